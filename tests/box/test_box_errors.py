"""tfstack-box refuses bad situations with one line and a non-zero exit, before touching anything."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests.box.box_support import BOX_COMMAND, TEST_BOX_NAME, needs_root_and_nspawn, run_box

pytestmark = [pytest.mark.box]


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_help_lists_every_subcommand() -> None:
    result = subprocess.run([BOX_COMMAND, "--help"], capture_output=True, text=True, check=True)
    for command in ("up", "down", "destroy", "ssh", "status"):
        assert f"  {command} " in result.stdout


def test_not_root_is_refused() -> None:
    # setpriv drops to nobody, so this runs even when the suite runs as root.
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BOX_COMMAND, "up"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "must run as root" in _one_line_error(result)


@needs_root_and_nspawn
def test_missing_systemd_nspawn_is_reported() -> None:
    # An empty PATH hides systemd-nspawn and apt-get alike, so nothing gets installed.
    result = run_box("up", env={**os.environ, "PATH": "/nonexistent"})
    line = _one_line_error(result)
    assert "systemd-nspawn" in line
    assert "not found" in line


@needs_root_and_nspawn
def test_taken_ssh_port_is_reported_and_nothing_is_created() -> None:
    name = f"{TEST_BOX_NAME}-port"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = run_box("up", "--ssh-port", str(port), name=name)
    line = _one_line_error(result)
    assert f"127.0.0.1:{port} is already taken" in line
    assert run_box("status", name=name).stdout.strip() == f"box {name}: absent"
    assert "nothing to destroy" in run_box("destroy", name=name).stdout


def test_bad_box_name_is_refused() -> None:
    result = run_box("status", name="../etc")
    assert "must be letters, digits and dashes" in _one_line_error(result)
