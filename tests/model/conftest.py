"""Fixtures for the model export tests: the commands run for real, writing only into tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.model.model_helpers import DIGITS_KERAS, run_command

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def digits_keras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained model from `make models` when present (make test builds it first); otherwise train one
    here, so the tests also run on a fresh clone without make."""
    if DIGITS_KERAS.is_file():
        return DIGITS_KERAS
    output = tmp_path_factory.mktemp("model_dir") / "digits.keras"
    result = run_command("tfstack-train-digits", "--output", output, "--quiet")
    assert result.returncode == 0, result.stderr
    return output


@pytest.fixture(scope="session")
def digits_export(tmp_path_factory: pytest.TempPathFactory, digits_keras: Path) -> tuple[Path, str]:
    """(serving_model/digits/1 exported once per session into a temporary serving dir, export stdout)."""
    serving_dir = tmp_path_factory.mktemp("serving_model")
    result = run_command(
        "tfstack-export-model", digits_keras, "--name", "digits", "--serving-dir", serving_dir
    )
    assert result.returncode == 0, result.stderr
    return serving_dir / "digits" / "1", result.stdout


@pytest.fixture(scope="session")
def half_plus_two_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    serving_dir = tmp_path_factory.mktemp("serving_model")
    result = run_command("tfstack-half-plus-two", "--serving-dir", serving_dir)
    assert result.returncode == 0, result.stderr
    return serving_dir / "half_plus_two" / "1"


@pytest.fixture(scope="session")
def held_out() -> object:
    from model_export.dataset import load_digits_split

    return load_digits_split()
