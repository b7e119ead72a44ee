"""The repository's folders, for tests that run the project's commands or read its files."""

from __future__ import annotations

from pathlib import Path

# tests/support/paths.py -> the repository root: the one place the tests derive it.
REPO_ROOT = Path(__file__).resolve().parents[2]
SERVING_MODEL_DIR = REPO_ROOT / "serving_model"
MODEL_DIR = REPO_ROOT / "model_dir"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
TEST_OUTPUT_DIR = REPO_ROOT / "test-output"
