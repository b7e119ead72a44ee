"""Helpers shared by the model tests (a plain module, so test files can import it by a unique name)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS_DIR = REPO_ROOT / "scripts"
DIGITS_KERAS = REPO_ROOT / "model_dir" / "digits.keras"

RunScript = Callable[..., subprocess.CompletedProcess[str]]


def run_script(script: str, *args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run scripts/<script> with the test interpreter, as `make` does; never raises on failure."""
    return subprocess.run(
        [sys.executable, str(SCRIPTS_DIR / script), *map(str, args)],
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
