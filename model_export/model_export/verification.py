"""Verification before publishing: reload the staged SavedModel and check it against the source.

Checks the signature contract (names, input/output keys, dtypes, shapes), compares outputs with the
Keras model on sample inputs (max abs difference <= 1e-5), and replays the warmup records through the
reloaded signatures, so a version that would fail in TF Serving is never published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model_export import signatures as sig
from model_export.errors import PipelineError
from model_export.warmup import WARMUP_RELATIVE_PATH, read_warmup_records, request_inputs

TOLERANCE = 1e-5

# signature -> ("inputs"|"outputs" -> key -> (dtype name, shape))
Contract = dict[str, dict[str, dict[str, tuple[str, list[int | None]]]]]


def digits_contract(height: int, width: int, channels: int, num_classes: int) -> Contract:
    outputs = {
        sig.PROBABILITIES_OUTPUT: ("float32", [None, num_classes]),
        sig.CLASS_ID_OUTPUT: ("int64", [None]),
    }
    return {
        sig.IMAGE_SIGNATURE: {"inputs": {sig.IMAGE_INPUT: ("string", [None])}, "outputs": outputs},
        sig.PIXELS_SIGNATURE: {
            "inputs": {sig.PIXELS_INPUT: ("float32", [None, height, width, channels])},
            "outputs": outputs,
        },
    }


HALF_PLUS_TWO_CONTRACT: Contract = {
    sig.IMAGE_SIGNATURE: {"inputs": {"x": ("float32", [None])}, "outputs": {"y": ("float32", [None])}}
}


@dataclass
class VerificationReport:
    signature_lines: list[str]
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    warmup_records: int = 0

    def lines(self) -> list[str]:
        diffs = ", ".join(f"{name} {value:.2e}" for name, value in sorted(self.max_abs_diff.items()))
        return [
            *self.signature_lines,
            f"max abs difference vs reference (limit {TOLERANCE:g}): {diffs}",
            f"warmup records replayed: {self.warmup_records}",
        ]


def actual_contract(loaded: Any) -> Contract:
    contract: Contract = {}
    for name, function in loaded.signatures.items():
        _, input_specs = function.structured_input_signature
        contract[name] = {
            "inputs": {k: (s.dtype.name, s.shape.as_list()) for k, s in input_specs.items()},
            "outputs": {k: (s.dtype.name, s.shape.as_list()) for k, s in function.structured_outputs.items()},
        }
    return contract


def check_contract(loaded: Any, expected: Contract) -> None:
    actual = actual_contract(loaded)
    if actual != expected:
        raise PipelineError(
            f"exported signatures differ from the contract: got {actual}, expected {expected}"
        )


def _max_abs_diff(a: Any, b: Any) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _check_diff(label: str, value: float) -> None:
    if not value <= TOLERANCE:  # also catches NaN
        raise PipelineError(f"verification failed: {label} differs from the reference by {value:.3g}")


def replay_warmup(loaded: Any, saved_model_dir: Path) -> int:
    logs = read_warmup_records(saved_model_dir / WARMUP_RELATIVE_PATH)
    for log in logs:
        name = log.predict_log.request.model_spec.signature_name or sig.IMAGE_SIGNATURE
        try:
            loaded.signatures[name](**request_inputs(log))
        except Exception as error:
            raise PipelineError(f"warmup request for {name!r} fails on the exported model: {error}") from None
    return len(logs)


def verify_digits(
    saved_model_dir: Path, model: Any, sample_pixels: np.ndarray, sample_images: list[bytes]
) -> VerificationReport:
    """sample_pixels [N, H, W, C] in [0, 1]; sample_images the same N images, encoded (PNG/JPEG)."""
    import tensorflow as tf

    height, width, channels = sig.model_image_shape(model)
    num_classes = int(model.output_shape[-1])
    loaded = tf.saved_model.load(str(saved_model_dir))
    check_contract(loaded, digits_contract(height, width, channels, num_classes))
    report = VerificationReport(signature_lines=sig.describe_signatures(loaded))

    expected = model(tf.constant(sample_pixels), training=False)
    got = loaded.signatures[sig.PIXELS_SIGNATURE](**{sig.PIXELS_INPUT: tf.constant(sample_pixels)})
    report.max_abs_diff[sig.PIXELS_SIGNATURE] = _max_abs_diff(got[sig.PROBABILITIES_OUTPUT], expected)

    # Image path: the reference is the Keras model on the same images decoded eagerly with the same
    # preprocessing function, so this checks the exported graph, not the preprocessing choice.
    decoded = tf.stack(
        [sig.preprocess_image_bytes(tf.constant(b), height, width, channels) for b in sample_images]
    )
    expected_images = model(decoded, training=False)
    got_images = loaded.signatures[sig.IMAGE_SIGNATURE](**{sig.IMAGE_INPUT: tf.constant(sample_images)})
    report.max_abs_diff[sig.IMAGE_SIGNATURE] = _max_abs_diff(
        got_images[sig.PROBABILITIES_OUTPUT], expected_images
    )
    for label, value in report.max_abs_diff.items():
        _check_diff(label, value)
    for outputs in (got, got_images):
        argmax = np.argmax(outputs[sig.PROBABILITIES_OUTPUT].numpy(), axis=1)
        if not np.array_equal(outputs[sig.CLASS_ID_OUTPUT].numpy(), argmax):
            raise PipelineError("verification failed: class_id is not the argmax of probabilities")
    report.warmup_records = replay_warmup(loaded, saved_model_dir)
    return report


def verify_half_plus_two(saved_model_dir: Path) -> VerificationReport:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    check_contract(loaded, HALF_PLUS_TWO_CONTRACT)
    report = VerificationReport(signature_lines=sig.describe_signatures(loaded))
    x = np.array([1.0, 2.0, 5.0, -4.0, 0.0], dtype=np.float32)
    got = loaded.signatures[sig.IMAGE_SIGNATURE](x=tf.constant(x))["y"]
    report.max_abs_diff[sig.IMAGE_SIGNATURE] = _max_abs_diff(got, 0.5 * x + 2.0)
    _check_diff(sig.IMAGE_SIGNATURE, report.max_abs_diff[sig.IMAGE_SIGNATURE])
    report.warmup_records = replay_warmup(loaded, saved_model_dir)
    return report
