"""Helpers of the deployment tests: run playbooks and the project's commands, read the box's state."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import requests

from tests.support.paths import REPO_ROOT, VENV_BIN
from tests.support.playbooks import PlaybookRun
from tests.support.waiting import wait_for

# A box of their own, created fresh for each run and destroyed after it, so the tests start from a
# clean machine and leave `make up`'s box (tfstack, ssh 2222) alone apart from powering it off: the
# boxes share the host's network, so only one can hold ports 8500, 8501 and 8080 at a time.
# Not tests/box's "tfstack-test": testinfra caches connections per inventory, and the two would share one.
BOX_HOST = "tfstack-deploy"
BOX_SSH_PORT = 2224
DEV_BOX = "tfstack"
BOX_INVENTORY = REPO_ROOT / ".box" / BOX_HOST / "inventory.ini"
# The box shares the host's network, so its services answer on the host's loopback.
REST_URL = "http://127.0.0.1:8501"
GRPC_TARGET = "127.0.0.1:8500"
WEB_URL = "http://127.0.0.1:8080"
SERVER_UNIT = "tfserving.service"
WEB_UNIT = "tfserving-web.service"
MODELS = ("digits", "half_plus_two")
# What polling the box's services may meet while they (re)start.
NOT_YET = (requests.RequestException, KeyError, ValueError)


@dataclasses.dataclass(frozen=True)
class Provisioner:
    """Runs `ansible-playbook -i <inventory> PLAYBOOK` against the box, as documented: its settings
    come from the vars recorded beside the inventory, -e only where a test changes something."""

    inventory: Path

    def run(
        self, playbook: str, *args: str, extra_vars: dict | None = None, timeout: int = 1200
    ) -> PlaybookRun:
        command = [
            str(VENV_BIN / "ansible-playbook"),
            "-i", str(self.inventory),
            playbook, *args,
        ]  # fmt: skip
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        completed = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        return PlaybookRun(completed.returncode, completed.stdout + completed.stderr)

    def converge(self, playbook: str = "site.yml", *args: str) -> PlaybookRun:
        """A run that must succeed: how a test puts back what it changed."""
        run = self.run(playbook, *args)
        assert run.returncode == 0, run.output[-4000:]
        return run


def run_command(command: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """One of the project's console scripts (tfstack-box, tfstack-standin-repo); fails the test on error."""
    completed = subprocess.run(
        [str(VENV_BIN / command), *args], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, (
        f"{command} {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed


def command_succeeds(command: str, *args: str) -> bool:
    """Whether a status-style command exits 0 (tfstack-box status, tfstack-standin-repo status)."""
    return (
        subprocess.run(
            [str(VENV_BIN / command), *args], cwd=REPO_ROOT, capture_output=True, check=False
        ).returncode
        == 0
    )


def box_shell(host, command: str) -> str:
    """Run a command as root in the box and return its stdout (fails the test on a non-zero exit)."""
    result = host.run(command)
    assert result.rc == 0, f"{command!r} exited {result.rc}: {result.stderr}"
    return result.stdout


def main_pid(host, unit: str = SERVER_UNIT) -> int:
    return int(box_shell(host, f"systemctl show --property=MainPID --value {unit}").strip())


def model_status(name: str) -> list[dict]:
    answer = requests.get(f"{REST_URL}/v1/models/{name}", timeout=5)
    answer.raise_for_status()
    return answer.json()["model_version_status"]


def models_available(*names: str) -> bool:
    """Every version the server reports for these models is AVAILABLE. Meant for right after a start:
    a server reports the versions it has unloaded since (as END) for the rest of its life."""
    return all(status["state"] == "AVAILABLE" for name in names for status in model_status(name))


def models_serving(*names: str) -> bool:
    """Each of these models has an AVAILABLE version."""
    return all(any(status["state"] == "AVAILABLE" for status in model_status(name)) for name in names)


def web_ready() -> bool:
    return requests.get(f"{WEB_URL}/readyz", timeout=15).status_code == 200


def wait_until_serving(timeout: float = 180) -> None:
    """Both services answer: each model has an AVAILABLE version, and the front end's /readyz says 200."""
    wait_for(lambda: models_serving(*MODELS), "every model serving", timeout, interval=1.0, tolerate=NOT_YET)
    wait_for(web_ready, "/readyz to answer 200", timeout, interval=1.0, tolerate=NOT_YET)
