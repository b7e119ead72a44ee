"""What every part of the repository builder shares: names, the cache folder, running a tool."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROG = "tfstack-standin-repo"
PACKAGES = ("tensorflow-model-server", "tensorflow-model-server-universal")
SUITE = "stable"
ARCH = "amd64"
KEY_NAME = "tensorflow-serving.release.pub.gpg"
FINGERPRINT_NAME = "tensorflow-serving.release.fingerprint"
DEFAULT_PORT = 8099


class RepoError(Exception):
    """An expected failure: printed as one line, exit 1."""


def say(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


def work_dir() -> Path:
    """Everything the builder keeps: key, repository, HTTP server state."""
    return Path(os.environ.get("TFSTACK_CACHE_DIR") or "/var/cache/tfserving-stack") / "standin-repo"


def repo_dir() -> Path:
    return work_dir() / "repo"


def run(*argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, what: str = "") -> str:
    """Runs a tool and returns its standard output; a failure is a RepoError with its last error line."""
    completed = subprocess.run(
        [str(arg) for arg in argv], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        last_line = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RepoError(f"{what or Path(argv[0]).name} failed: {last_line}")
    return completed.stdout
