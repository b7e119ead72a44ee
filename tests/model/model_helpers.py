"""Helpers shared by the model tests: run the model export commands as a user does."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.paths import MODEL_DIR, VENV_BIN

DIGITS_KERAS = MODEL_DIR / "digits.keras"
# The console scripts of the model export package (model_export/pyproject.toml).
COMMANDS = ("tfstack-train-digits", "tfstack-export-model", "tfstack-half-plus-two")

RunScript = Callable[..., subprocess.CompletedProcess[str]]


def command_argv(command: str, *args: object) -> list[str]:
    """The argv that runs one of the package's console scripts from the virtual environment."""
    return [str(VENV_BIN / command), *map(str, args)]


def run_command(command: str, *args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a console script as `make` does; never raises on failure."""
    return subprocess.run(
        command_argv(command, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )


def error_lines(stderr: str) -> list[str]:
    """stderr without TensorFlow's C++/absl log lines, which the scripts cannot switch off entirely."""
    noise = ("I0000 ", "W0000 ", "E0000 ", "WARNING: All log messages before absl")
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(noise)]


def tree(folder: Path) -> list[str]:
    """Every path under folder, relative, sorted: what a failed run must leave unchanged."""
    if not folder.exists():
        return []
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))
