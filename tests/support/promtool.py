"""promtool, Prometheus' checker, for the tests that run the stack's alert rules on this machine.

Taken from Debian's `prometheus` package without installing it: installing would start a Prometheus on
this machine's port 9090, which the box (it shares this machine's network) needs for its own. The
binary is cached with the other downloads, so a rerun does not fetch it again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE_DIR = Path(os.environ.get("TFSTACK_CACHE_DIR", "/var/cache/tfserving-stack")) / "promtool"


def promtool() -> Path:
    """The path of a promtool binary: the one on PATH, else Debian's, unpacked into the cache."""
    on_path = shutil.which("promtool")
    if on_path:
        return Path(on_path)
    version = _candidate_version()
    binary = CACHE_DIR / version / "promtool"
    if not binary.exists():
        _unpack(binary)
    return binary


def _candidate_version() -> str:
    policy = subprocess.run(
        ["apt-cache", "policy", "prometheus"], capture_output=True, text=True, check=True
    ).stdout
    for line in policy.splitlines():
        if line.strip().startswith("Candidate:"):
            return line.split(":", 1)[1].strip().replace(":", "_")
    raise RuntimeError(f"apt knows no prometheus package to take promtool from:\n{policy}")


def _unpack(binary: Path) -> None:
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["apt-get", "download", "prometheus"], cwd=work, check=True, capture_output=True)
        (deb,) = Path(work).glob("prometheus_*.deb")
        subprocess.run(["dpkg-deb", "--extract", str(deb), work], check=True)
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(work) / "usr/bin/promtool", binary)
