"""The result of one ansible-playbook run: its return code, its output and its PLAY RECAP."""

from __future__ import annotations

import dataclasses
import re

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
