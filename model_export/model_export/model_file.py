"""Checks and loading of Keras model files, with one-line errors for the usual mistakes."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from model_export.errors import PipelineError

if TYPE_CHECKING:
    import keras


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_keras_file(path: Path) -> None:
    """Cheap checks before TensorFlow is imported: a Keras 3 `.keras` file is a zip holding config.json."""
    if not path.exists():
        raise PipelineError(f"model file not found: {path}")
    if not path.is_file():
        raise PipelineError(f"model path is not a file: {path}")
    if path.suffix != ".keras":
        raise PipelineError(f"not a Keras model file (expected a .keras file): {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise PipelineError(f"not a Keras model file ({first_line(error)}): {path}") from None
    if "config.json" not in names:
        raise PipelineError(f"not a Keras model file (no config.json inside): {path}")


def load_keras_model(path: Path) -> keras.Model:
    import keras

    try:
        # compile=False: serving needs the forward pass only, not the optimizer state.
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a broken file; all mean the same here.
        raise PipelineError(f"cannot load Keras model {path}: {first_line(error)}") from None
