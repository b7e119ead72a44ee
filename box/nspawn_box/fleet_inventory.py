"""The fleet's Ansible inventory, group vars and the mirror's host vars, rendered from templates/fleet/."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jinja2

from . import fleet
from .errors import BoxError
from .inventory import ssh_options
from .settings import BOX_USER

# Relative to the working directory: the command runs from the repository root, as make does.
TEMPLATE_DIR = Path("templates") / "fleet"
GROUP_ORDER = ("mirror", "loadbalancer", "tfserving", "webapp")


def _environment() -> jinja2.Environment:
    if not TEMPLATE_DIR.is_dir():
        raise BoxError(f"no {TEMPLATE_DIR}/ here; run tfstack-fleet from the repository root")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _groups(members: Sequence[fleet.Member]) -> dict[str, list[dict[str, object]]]:
    groups: dict[str, list[dict[str, object]]] = {group: [] for group in GROUP_ORDER}
    for member in members:
        box = member.box()
        entry = {"name": member.name, "box": box, "ssh_options": " ".join(ssh_options(box))}
        for group in member.groups:
            groups.setdefault(group, []).append(entry)
    return {group: hosts for group, hosts in groups.items() if hosts}


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.touch(mode=mode)
        path.write_text(text)


def _render(template: str, **values: object) -> str:
    return _environment().get_template(template).render(**values)


def write(members: Sequence[fleet.Member], upstream: dict[str, str] | None, site: fleet.MirrorSite) -> Path:
    """Writes <site>/inventory.ini, group_vars/all.yml (how the hosts install from the mirror) and the
    mirror's host_vars; returns the first. Without upstream the mirror follows TF Serving's own
    repository (the role's defaults)."""
    secret, fingerprint = fleet.signing_key(site.directory)
    inventory = site.directory / "inventory.ini"
    groups = _groups(members)
    _write(inventory, _render("inventory.ini.j2", groups=groups, box_user=BOX_USER, inventory_path=inventory))
    all_vars = _render("group_vars_all.yml.j2", settings=site.client_vars(fingerprint))
    _write(site.directory / "group_vars" / "all.yml", all_vars)
    repo = Path.cwd()
    mirror_vars = _render(
        "host_vars_mirror.yml.j2",
        upstream=upstream,
        site=site,
        wheelhouse_projects=[repo / "webapp", repo / "standin"],
        wheelhouse_build_dir=fleet.environment_cache_dir() / "wheelhouse",
        signing_key=secret,
    )
    for member in groups.get("mirror", []):
        _write(site.directory / "host_vars" / f"{member['name']}.yml", mirror_vars, mode=0o600)
    return inventory
