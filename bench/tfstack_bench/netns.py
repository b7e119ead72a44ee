"""Running a bench command in a private network namespace that has only loopback: the TF Serving
stand-in listens on all interfaces, as TF Serving does, and must not be reachable from anywhere else."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable

# Set in the re-run command, so it knows it is inside (and does not re-run itself again).
NETNS_VARIABLE = "TFSTACK_BENCH_IN_NETNS"


def inside() -> bool:
    return os.environ.get(NETNS_VARIABLE) == "1"


def reexec(module: str, argv: list[str], progress: Callable[[str], None]) -> None:
    """`python -m <module> <argv>` again, in a new network namespace with loopback up. Returns only
    when it cannot (not root, or no unshare/ip): the command then runs here, on this machine's network."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if os.geteuid() != 0 or not unshare or not ip:
        progress(
            "note: not root or no unshare/ip: the stand-in listens on all interfaces of this machine "
            "for the run (--no-netns silences this)"
        )
        return
    progress("running in a private network namespace (loopback only)")
    command = [sys.executable, "-m", module, *argv]
    script = f'"{ip}" link set lo up && exec "$@"'
    environment = {**os.environ, NETNS_VARIABLE: "1"}
    os.execve(unshare, [unshare, "--net", "--", "/bin/sh", "-c", script, "sh", *command], environment)
