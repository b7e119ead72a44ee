"""ruff over every Python file of the repository (settings in pyproject.toml): its checks and its
formatting, so the code has one layout whoever wrote it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "arguments", [("check", "."), ("format", "--check", "--output-format", "concise", ".")]
)
def test_ruff_is_clean(arguments: tuple[str, ...]) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:]
