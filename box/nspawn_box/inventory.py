"""The Ansible inventory for a box, and the ssh command line that reaches it."""

from __future__ import annotations

from .settings import BOX_USER, Box

# The tfserving, webapp and monitoring groups are the ones site.yml targets; group_vars/ apply unchanged,
# as with Vagrant's ansible.groups mapping.
GROUPS = ("tfserving", "webapp", "monitoring")


def ssh_options(box: Box) -> list[str]:
    return [
        "-o", f"UserKnownHostsFile={box.known_hosts}",
        "-o", "StrictHostKeyChecking=yes",  # the box's host key is pinned in known_hosts
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes",
        "-o", "GSSAPIAuthentication=no",  # Debian's client enables it; it only costs time here
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip


def ssh_argv(box: Box, command: list[str], batch: bool = True) -> list[str]:
    argv = ["ssh", "-i", str(box.private_key), "-p", str(box.ssh_port), *ssh_options(box)]
    if batch:
        argv += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    return [*argv, f"{BOX_USER}@{box.ssh_host}", *command]


def inventory_text(box: Box) -> str:
    common_args = " ".join(ssh_options(box))
    lines = [
        f"# Written by tfstack-box for the box {box.name!r}; rewritten at every `tfstack-box up`.",
        "[box]",
        f"{box.name} ansible_host={box.ssh_host} ansible_port={box.ssh_port}",
        "",
    ]
    for group in GROUPS:
        lines += [f"[{group}]", box.name, ""]
    lines += [
        "[box:vars]",
        f"ansible_user={BOX_USER}",
        f"ansible_ssh_private_key_file={box.private_key}",
        f"ansible_ssh_common_args='{common_args}'",
        "ansible_become=true",
        "ansible_python_interpreter=/usr/bin/python3",
        "ansible_pipelining=true",
    ]
    return "\n".join(lines) + "\n"


def write_inventory(box: Box) -> None:
    box.inventory.parent.mkdir(parents=True, exist_ok=True)
    text = inventory_text(box)
    if not box.inventory.exists() or box.inventory.read_text() != text:
        box.inventory.write_text(text)
