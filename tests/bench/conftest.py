"""Fixtures for the benchmark tests.

digits_model -- serving_model/digits, the model the benchmark commands serve by default. Fails (does not
  skip) when it has no numbered version: the models are part of the build (`make models-if-missing`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import SERVING_MODEL_DIR


@pytest.fixture(scope="session")
def digits_model() -> Path:
    base = SERVING_MODEL_DIR / "digits"
    if not (base.is_dir() and any(child.name.isdigit() for child in base.iterdir())):
        pytest.fail("serving_model/digits is missing: run `make models-if-missing`")
    return base
