"""The exported digits and half_plus_two SavedModels: signatures, the b64 image path, warmup records.

The expectations are written out literally from the team brief's contract rather than imported from the
pipeline, so a change in the pipeline cannot silently change what is tested.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # needs the session's export (TensorFlow start-up + SavedModel write)

DIGITS_SIGNATURES = {
    "serving_default": {
        "inputs": {"image_bytes": ("string", [None])},
        "outputs": {"probabilities": ("float32", [None, 10]), "class_id": ("int64", [None])},
    },
    "predict_pixels": {
        "inputs": {"pixels": ("float32", [None, 8, 8, 1])},
        "outputs": {"probabilities": ("float32", [None, 10]), "class_id": ("int64", [None])},
    },
}
MIN_ACCURACY = 0.97


def signature_table(loaded: Any) -> dict[str, Any]:
    table = {}
    for name, function in loaded.signatures.items():
        _, inputs = function.structured_input_signature
        table[name] = {
            "inputs": {key: (spec.dtype.name, spec.shape.as_list()) for key, spec in inputs.items()},
            "outputs": {
                key: (spec.dtype.name, spec.shape.as_list())
                for key, spec in function.structured_outputs.items()
            },
        }
    return table


@pytest.fixture(scope="module")
def digits_saved_model(digits_export: tuple[Path, str]) -> Any:
    import tensorflow as tf

    return tf.saved_model.load(str(digits_export[0]))


def classify_b64(loaded: Any, images: list[bytes]) -> np.ndarray:
    """What TF Serving's REST layer does with {"instances": [{"b64": ...}]}: base64-decode each value
    into the string tensor `image_bytes`."""
    import tensorflow as tf

    instances = [{"b64": base64.b64encode(image).decode("ascii")} for image in images]
    decoded = [base64.b64decode(instance["b64"]) for instance in instances]
    outputs = loaded.signatures["serving_default"](image_bytes=tf.constant(decoded))
    return outputs["class_id"].numpy()


def test_digits_signature_names_dtypes_and_shapes(digits_saved_model: Any) -> None:
    assert signature_table(digits_saved_model) == DIGITS_SIGNATURES


def test_export_prints_the_signatures(digits_export: tuple[Path, str]) -> None:
    stdout = digits_export[1]
    assert "serving_default: inputs image_bytes string [None]" in stdout
    assert "predict_pixels: inputs pixels float32 [None, 8, 8, 1]" in stdout
    assert "class_id int64 [None], probabilities float32 [None, 10]" in stdout


def test_export_leaves_only_the_version_directory(digits_export: tuple[Path, str]) -> None:
    version_dir = digits_export[0]
    assert [entry.name for entry in version_dir.parent.iterdir()] == ["1"]
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "variables" / "variables.index").is_file()


def test_b64_png_path_classifies_held_out_digits(digits_saved_model: Any, held_out: Any) -> None:
    from model_export.dataset import encode_png_batch

    # load_digits pixels are 0..16; a PNG client sends them as 0..255 gray levels.
    predicted = classify_b64(digits_saved_model, encode_png_batch(held_out.test_images_raw / 16.0))
    accuracy = float(np.mean(predicted == held_out.test_labels))
    print(f"b64 PNG held-out accuracy: {accuracy:.4f} on {len(predicted)} images")
    assert accuracy >= MIN_ACCURACY


def encode_client_image(pixels: np.ndarray, variant: str) -> bytes:
    """One held-out digit (8x8, [0, 1], light ink on black) as a client might send it."""
    from PIL import Image

    gray = np.rint(pixels * 255).astype(np.uint8)
    if variant == "rgba_canvas":
        # A browser canvas export: black strokes whose opacity is the ink, transparent black elsewhere.
        rgba = np.zeros((*gray.shape, 4), np.uint8)
        rgba[..., 3] = gray
        image, file_format = Image.fromarray(rgba, "RGBA"), "PNG"
    elif variant == "dark_ink_on_light_paper_png":
        image, file_format = Image.fromarray(255 - gray), "PNG"
    else:
        mode, file_format = {
            "jpeg_gray": ("L", "JPEG"),
            "jpeg_rgb": ("RGB", "JPEG"),
            "gif": ("L", "GIF"),
            "bmp_rgb": ("RGB", "BMP"),
            "png_gray_alpha": ("LA", "PNG"),
        }[variant]
        image = Image.fromarray(gray).convert(mode)
    # Clients send larger pictures than 8x8: the graph has to shrink them again.
    image = image.resize((64, 64), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format=file_format, **({"quality": 95} if file_format == "JPEG" else {}))
    return buffer.getvalue()


@pytest.mark.parametrize(
    "variant",
    [
        "jpeg_gray",
        "jpeg_rgb",
        "gif",
        "bmp_rgb",
        "png_gray_alpha",
        "rgba_canvas",
        "dark_ink_on_light_paper_png",
    ],
)
def test_b64_path_handles_other_client_images(digits_saved_model: Any, held_out: Any, variant: str) -> None:
    """Other formats, color, transparency, dark ink on light paper and 64x64 images all go through
    decode / composite / grayscale / invert / resize inside the graph."""
    images = [encode_client_image(image, variant) for image in held_out.test_images_raw / 16.0]
    predicted = classify_b64(digits_saved_model, images)
    accuracy = float(np.mean(predicted == held_out.test_labels))
    print(f"b64 {variant} held-out accuracy: {accuracy:.4f}")
    assert accuracy >= MIN_ACCURACY


def test_pixels_signature_matches_keras(digits_saved_model: Any, digits_keras: Path, held_out: Any) -> None:
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(digits_keras, compile=False)
    pixels = held_out.test_pixels
    expected = model.predict(pixels, verbose=0)
    outputs = digits_saved_model.signatures["predict_pixels"](pixels=tf.constant(pixels))
    probabilities = outputs["probabilities"].numpy()
    assert np.max(np.abs(probabilities - expected)) <= 1e-5
    assert np.array_equal(outputs["class_id"].numpy(), np.argmax(probabilities, axis=1))
    assert float(np.mean(outputs["class_id"].numpy() == held_out.test_labels)) >= MIN_ACCURACY


def test_undecodable_bytes_are_rejected(digits_saved_model: Any) -> None:
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError):
        digits_saved_model.signatures["serving_default"](image_bytes=tf.constant([b"not an image"]))


def test_half_plus_two_predicts_the_quickstart_answer(half_plus_two_export: Path) -> None:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(half_plus_two_export))
    assert signature_table(loaded) == {
        "serving_default": {"inputs": {"x": ("float32", [None])}, "outputs": {"y": ("float32", [None])}}
    }
    y = loaded.signatures["serving_default"](x=tf.constant([1.0, 2.0, 5.0]))["y"].numpy()
    assert y.tolist() == [2.5, 3.0, 4.5]


@pytest.mark.parametrize("model", ["digits", "half_plus_two"])
def test_warmup_records_are_prediction_logs_the_model_accepts(
    model: str, digits_export: tuple[Path, str], half_plus_two_export: Path
) -> None:
    import tensorflow as tf

    version_dir = digits_export[0] if model == "digits" else half_plus_two_export
    from model_export.warmup import read_warmup_records

    # Parses every record as a PredictionLog and raises on one that is not.
    logs = read_warmup_records(version_dir / "assets.extra" / "tf_serving_warmup_requests")
    assert 1 <= len(logs) <= 1000  # TF Serving replays at most 1000
    loaded = tf.saved_model.load(str(version_dir))
    signature_names = set()
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == model
        signature_names.add(request.model_spec.signature_name)
        function = loaded.signatures[request.model_spec.signature_name]
        _, expected_inputs = function.structured_input_signature
        assert set(request.inputs) == set(expected_inputs)
        function(**{key: tf.constant(tf.make_ndarray(proto)) for key, proto in request.inputs.items()})
    assert "serving_default" in signature_names
