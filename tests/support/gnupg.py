"""Throw-away GnuPG homes in tests: gpg starts an agent for each home it uses and leaves it running, so
a test that is done with a home stops that home's agent."""

from __future__ import annotations

import subprocess
from pathlib import Path


def stop_agent(home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False
    )
