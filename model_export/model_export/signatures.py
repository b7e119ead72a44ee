"""The serving graphs: what TF Serving clients call, with preprocessing inside the graph.

digits (any Keras image classifier with input [None, H, W, C], C in {1, 3}, softmax output [None, K]):
  serving_default: image_bytes tf.string [None]
                   -> probabilities float32 [None, K], class_id int64 [None]
  predict_pixels:  pixels float32 [None, H, W, C] -> same outputs
half_plus_two:
  serving_default: x float32 [None] -> y float32 [None]   (y = 0.5 * x + 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

IMAGE_SIGNATURE = "serving_default"
PIXELS_SIGNATURE = "predict_pixels"
IMAGE_INPUT = "image_bytes"
PIXELS_INPUT = "pixels"
PROBABILITIES_OUTPUT = "probabilities"
CLASS_ID_OUTPUT = "class_id"

# Mean brightness above this means "light background": a photo or drawing of dark ink on paper.
# load_digits has light ink on a dark background (held-out means stay below 0.43), so such images are
# inverted to match what the model was trained on.
INVERT_ABOVE_MEAN_BRIGHTNESS = 0.5


def model_image_shape(model: keras.Model) -> tuple[int, int, int]:
    """(height, width, channels) of a Keras image classifier; rejects models the graph cannot feed."""
    from model_export.errors import PipelineError

    shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else None
    if shape is None or len(shape) != 4 or None in shape[1:] or shape[3] not in (1, 3):
        raise PipelineError(
            f"model input shape {model.input_shape} is not an image batch [None, height, width, 1 or 3]"
        )
    return int(shape[1]), int(shape[2]), int(shape[3])


def preprocess_image_bytes(image_bytes: tf.Tensor, height: int, width: int, channels: int) -> tf.Tensor:
    """One encoded image (PNG, JPEG, GIF or BMP) -> float32 [height, width, channels] in [0, 1].

    Decoded with its own channel count, because GIF and BMP decoders refuse channels=1. Transparency
    is composited over white paper (a canvas drawing is black strokes on transparent pixels whose
    colour is black too), color is converted to luminance, and light-background images (mean > 0.5)
    are inverted so dark ink on paper looks like the training data.
    """
    import tensorflow as tf

    image = tf.io.decode_image(image_bytes, channels=0, dtype=tf.float32, expand_animations=False)
    image = tf.ensure_shape(image, [None, None, None])
    has_alpha = tf.equal(tf.shape(image)[-1] % 2, 0)  # 2 = gray + alpha, 4 = RGBA
    alpha = tf.cond(has_alpha, lambda: image[..., -1:], lambda: tf.ones_like(image[..., :1]))
    color = tf.cond(has_alpha, lambda: image[..., :-1], lambda: image)
    color = color * alpha + (1.0 - alpha)
    is_rgb = tf.equal(tf.shape(color)[-1], 3)
    if channels == 1:
        image = tf.cond(is_rgb, lambda: tf.image.rgb_to_grayscale(color), lambda: color[..., :1])
    else:
        image = tf.cond(is_rgb, lambda: color, lambda: tf.tile(color[..., :1], [1, 1, 3]))
    image = tf.ensure_shape(image, [None, None, channels])
    # "area" averages the source pixels that fall into each target pixel: the right filter for
    # shrinking a large photo to 8x8, and an exact identity for an image that already has the size.
    image = tf.image.resize(image, [height, width], method="area", antialias=True)
    image = tf.cond(tf.reduce_mean(image) > INVERT_ABOVE_MEAN_BRIGHTNESS, lambda: 1.0 - image, lambda: image)
    return tf.clip_by_value(image, 0.0, 1.0)


def build_digits_module(model: keras.Model) -> tf.Module:
    """A tf.Module holding the Keras model and the two signature functions."""
    import tensorflow as tf

    height, width, channels = model_image_shape(model)

    class DigitsServing(tf.Module):
        def __init__(self, classifier: keras.Model) -> None:
            super().__init__(name="digits_serving")
            self.classifier = classifier

        def _outputs(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
            probabilities = tf.cast(self.classifier(pixels, training=False), tf.float32)
            return {
                PROBABILITIES_OUTPUT: probabilities,
                CLASS_ID_OUTPUT: tf.argmax(probabilities, axis=1, output_type=tf.int64),
            }

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_INPUT)])
        def serve_image_bytes(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
            pixels = tf.map_fn(
                lambda one: preprocess_image_bytes(one, height, width, channels),
                image_bytes,
                fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32),
            )
            return self._outputs(pixels)

        @tf.function(
            input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32, name=PIXELS_INPUT)]
        )
        def serve_pixels(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
            return self._outputs(pixels)

    return DigitsServing(model)


def digits_signatures(module: Any) -> dict[str, Any]:
    return {
        IMAGE_SIGNATURE: module.serve_image_bytes.get_concrete_function(),
        PIXELS_SIGNATURE: module.serve_pixels.get_concrete_function(),
    }


def build_half_plus_two_module() -> tf.Module:
    """TF Serving's classic smoke-test model, with its two numbers as variables like the original."""
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="half_plus_two")
            self.a = tf.Variable(0.5, dtype=tf.float32, name="a")
            self.b = tf.Variable(2.0, dtype=tf.float32, name="b")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": self.a * x + self.b}

    return HalfPlusTwo()


def half_plus_two_signatures(module: Any) -> dict[str, Any]:
    return {IMAGE_SIGNATURE: module.serve.get_concrete_function()}


def save_module(module: tf.Module, signatures: dict[str, Any], directory: str) -> None:
    import tensorflow as tf

    tf.saved_model.save(module, directory, signatures=signatures)


def describe_signatures(loaded: Any) -> list[str]:
    """One line per signature: names, dtypes and shapes of inputs and outputs, read from the SavedModel."""
    lines = []
    for name in sorted(loaded.signatures):
        function = loaded.signatures[name]
        _, input_specs = function.structured_input_signature
        inputs = ", ".join(
            f"{key} {spec.dtype.name} {spec.shape.as_list()}" for key, spec in sorted(input_specs.items())
        )
        outputs = ", ".join(
            f"{key} {spec.dtype.name} {spec.shape.as_list()}"
            for key, spec in sorted(function.structured_outputs.items())
        )
        lines.append(f"{name}: inputs {inputs} -> outputs {outputs}")
    return lines
