"""Helpers of the fleet tests: the fleet's addresses, playbook runs, commands on its boxes, HAProxy's view."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from tests.support.paths import REPO_ROOT, VENV_BIN
from tests.support.playbooks import PlaybookRun

FLEET_INVENTORY = REPO_ROOT / ".box" / "fleet" / "inventory.ini"
LB = "10.213.0.10"
TFSERVING_HOSTS = {"fleet-tfs1": "10.213.0.11", "fleet-tfs2": "10.213.0.12"}
WEB_HOSTS = {"fleet-web1": "10.213.0.21"}
# The mirror's upstream for these tests: a stand-in repository of their own (cache folder and port),
# so publishing a new version or expiring its key touches nothing else.
UPSTREAM_PORT = 8098


def playbook(name: str, *args: str, extra_vars: dict | None = None, timeout: int = 1800) -> PlaybookRun:
    command = [str(VENV_BIN / "ansible-playbook"), "-i", str(FLEET_INVENTORY), name, *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    completed = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    return PlaybookRun(completed.returncode, completed.stdout + completed.stderr)


def command(name: str, *args: str, env: dict | None = None, timeout: int = 900) -> str:
    """One of the project's console scripts; fails the test on a non-zero exit."""
    argv = [str(VENV_BIN / name), *args]
    completed = subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    assert completed.returncode == 0, (
        f"{name} {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed.stdout


def on_box(box: str, shell_command: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """Run a shell command as root on a box of the fleet (over its ssh)."""
    # One word for the remote shell: ssh joins its arguments with spaces.
    remote = ["sudo", "sh", "-c", shlex.quote(shell_command)]
    argv = [str(VENV_BIN / "tfstack-box"), "ssh", "--name", box, "--", *remote]
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def haproxy_states() -> dict[tuple[str, str], str]:
    """(backend, server) -> status (UP, DOWN, MAINT, DRAIN, ...) as the load balancer sees it now."""
    result = on_box("fleet-lb", "echo 'show stat' | socat - UNIX-CONNECT:/run/haproxy/admin.sock")
    assert result.returncode == 0, result.stderr
    states = {}
    for line in result.stdout.splitlines():
        fields = line.split(",")
        if (
            len(fields) > 17
            and fields[0].startswith(("tfserving_", "web"))
            and fields[1] not in ("FRONTEND", "BACKEND")
        ):
            states[(fields[0], fields[1])] = fields[17]
    return states


def assert_no_failures(report, what: str) -> None:
    """Every kind of client (REST, gRPC, web) sent requests and none failed."""
    print(f"\n{what}: {report.summary()}")
    assert sum(report.sent.values()) > 0, "the load sent nothing"
    assert all(report.sent[kind] > 0 for kind in ("rest", "grpc", "web")), report.summary()
    assert sum(report.failed.values()) == 0, report.failures


def installed_version(box: str) -> str:
    result = on_box(
        box,
        "dpkg-query -W -f='${Version}' tensorflow-model-server tensorflow-model-server-universal 2>/dev/null",
    )
    return result.stdout.strip()


def repo_path(*parts: str) -> Path:
    return REPO_ROOT.joinpath(*parts)
