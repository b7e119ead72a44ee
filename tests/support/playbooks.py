"""The result of one ansible-playbook run: its return code, its output and its PLAY RECAP."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT, VENV_BIN

# The system's Python starts modules faster than the virtual environment's (about 0.4 s a task less).
SYSTEM_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclasses.dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str

    def recaps(self) -> dict[str, dict[str, int]]:
        """host -> ok/changed/unreachable/failed, for every host of the PLAY RECAP."""
        return {
            match["host"]: {key: int(value) for key, value in match.groupdict().items() if key != "host"}
            for match in RECAP.finditer(self.output)
        }

    @property
    def recap(self) -> dict[str, int]:
        match = RECAP.search(self.output)
        assert match, f"no PLAY RECAP in the output:\n{self.output[-3000:]}"
        return {key: int(value) for key, value in match.groupdict().items() if key != "host"}

    def batches(self, play: str) -> int:
        """How many batches the play named so ran in: ansible-playbook prints its header once per batch."""
        return self.output.count(f"PLAY [{play}] ")

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


def play_here(playbook: str, folder: Path, extra_vars: dict[str, object], *args: str) -> PlaybookRun:
    """Run `playbook` (its text) on this machine over the local connection, with the repository's roles;
    `folder` receives the playbook file and is the working directory."""
    path = folder / "playbook.yml"
    path.write_text(playbook)
    variables = {"ansible_python_interpreter": SYSTEM_PYTHON, **extra_vars}
    command = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(path)]
    command += ["-e", json.dumps(variables), *args]
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"), "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    return PlaybookRun(done.returncode, done.stdout + done.stderr)
