"""The digits classifier: a small CNN on [N, 8, 8, 1] pixels in [0, 1] -> softmax over 10 classes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from model_export.dataset import IMAGE_SIZE, NUM_CLASSES, DigitsSplit

if TYPE_CHECKING:
    import keras

DEFAULT_EPOCHS = 30
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class TrainingResult:
    model: keras.Model
    test_accuracy: float
    seconds: float


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and ask TF for deterministic kernels, so reruns agree."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_classifier() -> keras.Model:
    import keras
    from keras import layers

    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="digits_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train_classifier(
    split: DigitsSplit, seed: int, epochs: int = DEFAULT_EPOCHS, verbose: int = 2
) -> TrainingResult:
    """Train on the training split and measure accuracy on the held-out split (never seen in training)."""
    make_deterministic(seed)
    started = time.perf_counter()
    model = build_classifier()
    model.fit(
        split.train_pixels,
        split.train_labels,
        epochs=epochs,
        batch_size=DEFAULT_BATCH_SIZE,
        shuffle=True,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    probabilities = model.predict(split.test_pixels, verbose=0)
    test_accuracy = float(np.mean(np.argmax(probabilities, axis=1) == split.test_labels))
    return TrainingResult(model=model, test_accuracy=test_accuracy, seconds=seconds)
