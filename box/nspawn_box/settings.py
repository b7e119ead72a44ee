"""Names and paths of one box: where its root, log, key and inventory live."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NAME = "tfstack"
DEFAULT_SSH_PORT = 2222
BOX_USER = "vagrant"
# Where sshd listens on a box that shares this machine's network; a box on the private network
# listens on its own address, port 22.
SHARED_NETWORK_SSH_HOST = "127.0.0.1"
PRIVATE_NETWORK_SSH_PORT = 22


def project_box_dir() -> Path:
    """Keys and the inventory sit next to the playbooks (git-ignored), like Vagrant's .vagrant/: in the
    working directory, the repository root from which make and the tests run the command."""
    return Path(os.environ.get("TFSTACK_BOX_DIR") or ".box").resolve()


def cache_dir() -> Path:
    """The shared download cache (team convention: TFSTACK_CACHE_DIR)."""
    return Path(os.environ.get("TFSTACK_CACHE_DIR") or "/var/cache/tfserving-stack")


def state_dir() -> Path:
    """Box roots are big and root-owned, so they live outside the git tree."""
    return Path(os.environ.get("TFSTACK_STATE_DIR") or "/var/lib/tfserving-stack") / "boxes"


@dataclass(frozen=True)
class Box:
    """Everything that names one box on this host."""

    name: str
    ssh_port: int
    # None: the box shares this machine's network; else its address on the private network.
    address: str | None = None

    @property
    def ssh_host(self) -> str:
        return self.address or SHARED_NETWORK_SSH_HOST

    @property
    def home(self) -> Path:
        return state_dir() / self.name

    @property
    def root(self) -> Path:
        return self.home / "root"

    @property
    def log_file(self) -> Path:
        return self.home / "box.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "nspawn.pid"

    @property
    def settings_file(self) -> Path:
        return self.home / "box.json"

    @property
    def repo_dir(self) -> Path:
        return project_box_dir() / self.name

    @property
    def private_key(self) -> Path:
        return self.repo_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.repo_dir / "known_hosts"

    @property
    def inventory(self) -> Path:
        # The default box's inventory is the one `make up` and the playbooks use; other boxes
        # (tests) get their own so they never overwrite it.
        if self.name == DEFAULT_NAME:
            return project_box_dir() / "inventory.ini"
        return self.repo_dir / "inventory.ini"

    @property
    def lock_file(self) -> Path:
        # /run/lock, not the state dir: a lock must not outlive `destroy` as a stray file there.
        return Path("/run/lock") / f"tfstack-box-{self.name}.lock"


def stored_settings(name: str) -> dict[str, object]:
    """What an existing box was last brought up with (ssh_port, address, image_key), so later commands
    need not repeat it; empty for a box that does not exist."""
    try:
        settings = json.loads((state_dir() / name / "box.json").read_text())
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


def save_settings(box: Box, image_key: str) -> None:
    settings = {"name": box.name, "ssh_port": box.ssh_port, "address": box.address, "image_key": image_key}
    box.settings_file.write_text(json.dumps(settings, indent=2) + "\n")
