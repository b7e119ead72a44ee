"""`make up`'s package mirror (TFSTACK_APT_SOURCE=mirror): one box, tfstack-mirror, on this machine's
network, set up by playbooks/mirror.yml as the fleet's mirror is but on ports of its own, so both can
run at once. The local box, also on this machine's network, reaches it at 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from . import fleet, fleet_inventory, lifecycle
from .settings import project_box_dir

MEMBER = fleet.Member("tfstack-mirror", ("mirror",), ssh_port=2241)


def site() -> fleet.MirrorSite:
    return fleet.MirrorSite(project_box_dir() / "mirror", "127.0.0.1", http_port=8091, os_proxy_port=3143)


def up(upstream: dict[str, str] | None, boot_timeout: float) -> Path:
    """Boots the mirror box and writes its inventory (and vars) in .box/mirror/; returns the inventory."""
    lifecycle.up(MEMBER.box(), boot_timeout)
    return fleet_inventory.write([MEMBER], upstream, site())


def record(inventory_dir: Path) -> Path:
    """Writes how hosts install from this mirror to group_vars/all.json beside the inventory in
    inventory_dir, which every plain `ansible-playbook -i <inventory>` run reads; returns its path."""
    _, fingerprint = fleet.signing_key(site().directory)
    path = inventory_dir / "group_vars" / "all.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(site().client_vars(fingerprint), indent=2) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path
