"""Helpers of the deployment tests: run playbooks against the box, read the box's state."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# testinfra's ansible backend runs `ansible-inventory` from PATH: make it this environment's.
if str(VENV_BIN) not in os.environ["PATH"].split(os.pathsep):
    os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
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

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclasses.dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str

    @property
    def recap(self) -> dict[str, int]:
        match = RECAP.search(self.output)
        assert match, f"no PLAY RECAP in the output:\n{self.output[-3000:]}"
        return {key: int(value) for key, value in match.groupdict().items() if key != "host"}

    def changed_tasks(self) -> list[str]:
        """Names of the tasks that reported a change, for a readable failure."""
        changed = []
        task = ""
        for line in self.output.splitlines():
            if line.startswith("TASK ["):
                task = line
            elif line.startswith("changed:"):
                changed.append(f"{task} {line}")
        return changed


@dataclasses.dataclass(frozen=True)
class Provisioner:
    """Runs playbooks against the box with the stand-in repository's settings."""

    extra_vars_file: Path

    def run(
        self, playbook: str, *args: str, extra_vars: dict | None = None, timeout: int = 1200
    ) -> PlaybookRun:
        command = [
            str(VENV_BIN / "ansible-playbook"),
            "-i", str(BOX_INVENTORY),
            "-e", f"@{self.extra_vars_file}",
            playbook, *args,
        ]  # fmt: skip
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        completed = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        return PlaybookRun(completed.returncode, completed.stdout + completed.stderr)


def run_script(*argv: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [str(REPO_ROOT / argv[0]), *argv[1:]], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, f"{' '.join(argv)} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def box_shell(host, command: str) -> str:
    """Run a command as root in the box and return its stdout (fails the test on a non-zero exit)."""
    result = host.run(command)
    assert result.rc == 0, f"{command!r} exited {result.rc}: {result.stderr}"
    return result.stdout


def main_pid(host, unit: str) -> int:
    return int(box_shell(host, f"systemctl show --property=MainPID --value {unit}").strip())


def model_status(name: str) -> list[dict]:
    answer = requests.get(f"{REST_URL}/v1/models/{name}", timeout=5)
    answer.raise_for_status()
    return answer.json()["model_version_status"]


def models_available(*names: str) -> bool:
    """Every version the server reports for these models is AVAILABLE."""
    return all(status["state"] == "AVAILABLE" for name in names for status in model_status(name))


def wait_for(predicate, timeout: float, interval: float = 1.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (requests.RequestException, KeyError, ValueError) as error:
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last_error})")
