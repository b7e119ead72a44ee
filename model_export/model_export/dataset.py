"""scikit-learn's bundled 8x8 digits (no download) as a seeded train/held-out split, and PNG encoding."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

# load_digits pixels are integers 0..16 with ink as high values.
DIGITS_PIXEL_MAX = 16.0
IMAGE_SIZE = 8
NUM_CLASSES = 10
DEFAULT_SEED = 1234
DEFAULT_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class DigitsSplit:
    """Pixels are float32 [N, 8, 8, 1] in [0, 1]; labels int64 [N]."""

    train_pixels: np.ndarray
    train_labels: np.ndarray
    test_pixels: np.ndarray
    test_labels: np.ndarray
    # Raw 0..16 held-out images, kept so the image path can be tested on the original data.
    test_images_raw: np.ndarray


def load_digits_split(seed: int = DEFAULT_SEED, test_fraction: float = DEFAULT_TEST_FRACTION) -> DigitsSplit:
    """Stratified, seeded split, so every run (and every test) sees the same held-out images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32)
    labels = digits.target.astype(np.int64)
    train_images, test_images, train_labels, test_labels = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return DigitsSplit(
        train_pixels=to_model_pixels(train_images),
        train_labels=train_labels,
        test_pixels=to_model_pixels(test_images),
        test_labels=test_labels,
        test_images_raw=test_images,
    )


def to_model_pixels(raw_images: np.ndarray) -> np.ndarray:
    """0..16 images [N, 8, 8] -> the model's input: float32 [N, 8, 8, 1] in [0, 1]."""
    return (raw_images / DIGITS_PIXEL_MAX).astype(np.float32)[..., np.newaxis]


def encode_png(pixels: np.ndarray) -> bytes:
    """One image [H, W] or [H, W, 1|3], values in [0, 1], as 8-bit PNG bytes (what a client would send)."""
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    eight_bit = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(eight_bit).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_png_batch(pixels: np.ndarray) -> list[bytes]:
    return [encode_png(image) for image in pixels]


def encode_jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    eight_bit = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(eight_bit).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def sample_pixels(count: int, height: int, width: int, channels: int) -> np.ndarray:
    """Representative inputs for verification and warmup: held-out digits, resized to the model's
    input size if it differs, repeated over the channels. float32 [count, height, width, channels]."""
    images = load_digits_split().test_pixels[:count]
    if (height, width) != (IMAGE_SIZE, IMAGE_SIZE):
        resized = [
            np.asarray(
                Image.fromarray(image[..., 0]).resize((width, height), Image.Resampling.BILINEAR),
                dtype=np.float32,
            )
            for image in images
        ]
        images = np.clip(np.stack(resized), 0.0, 1.0)[..., np.newaxis]
    return np.repeat(images, channels, axis=-1).astype(np.float32)
