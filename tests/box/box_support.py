"""Helpers for the local-box tests: a box of their own, never the lead's `tfstack` on port 2222."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support.paths import VENV_BIN

BOX_COMMAND = VENV_BIN / "tfstack-box"
TEST_BOX_NAME = os.environ.get("TFSTACK_TEST_BOX_NAME", "tfstack-test")
TEST_SSH_PORT = int(os.environ.get("TFSTACK_TEST_BOX_SSH_PORT", "2231"))

needs_root_and_nspawn = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("systemd-nspawn") is None,
    reason="the box needs root and systemd-nspawn (run `make host-packages` as root)",
)


def run_box(
    command: str,
    *args: str,
    name: str = TEST_BOX_NAME,
    env: dict[str, str] | None = None,
    echo: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Runs tfstack-box with the test box's name; the output is echoed so -s shows the figures."""
    # --name before the other arguments: `ssh -- COMMAND` takes everything after it.
    argv = [str(BOX_COMMAND), command, "--name", name, *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, check=False)
    if echo:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
    return result


def box_ssh(command: str, name: str = TEST_BOX_NAME) -> subprocess.CompletedProcess[str]:
    return run_box("ssh", "--", command, name=name, echo=False)
