"""Per-box set-up written straight into the box's root: identity, sshd, the login key, host CAs."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from .errors import BoxError
from .settings import BOX_USER, Box

HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
SSHD_DROP_IN = "etc/ssh/sshd_config.d/00-box.conf"


def _ssh_keygen(*argv: str) -> None:
    result = subprocess.run(["ssh-keygen", "-q", *argv], check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise BoxError(f"ssh-keygen {' '.join(argv)} failed: {result.stderr.strip()}")


def _user_ids(root: Path, user: str) -> tuple[int, int]:
    """uid and gid of a user *inside* the box (its passwd file, not the host's)."""
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise BoxError(f"the box has no user {user!r}; destroy it and bring it up again")


def give_identity(box: Box, root: Path) -> None:
    """Run once on a new box's root (before it takes its final place): machine id, hostname, host key."""
    (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    (root / "etc/hostname").write_text(box.name + "\n")
    # debootstrap writes no /etc/hosts; sudo resolves the hostname, and without it waits on DNS.
    (root / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{box.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    host_key = root / "etc/ssh/ssh_host_ed25519_key"
    _ssh_keygen("-t", "ed25519", "-N", "", "-C", f"root@{box.name}", "-f", str(host_key))


def configure_sshd(box: Box) -> None:
    """Written at every up, so a changed --ssh-port applies to a stopped box."""
    (box.root / SSHD_DROP_IN).write_text(
        "# Written by tfstack-box. A box sharing the host's network must keep sshd off the host's\n"
        "# port 22 and other interfaces; a box on the private network listens on its own address.\n"
        "# First value wins, hence the 00- prefix.\n"
        f"Port {box.ssh_port}\n"
        f"ListenAddress {box.ssh_host}\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin no\n"
    )


def install_login_key(box: Box) -> None:
    """A key pair per box (private half in the repo's .box/, git-ignored), as Vagrant swaps its key."""
    box.repo_dir.mkdir(parents=True, exist_ok=True)
    if not box.private_key.exists():
        _ssh_keygen("-t", "ed25519", "-N", "", "-C", f"{BOX_USER}@{box.name}", "-f", str(box.private_key))
    uid, gid = _user_ids(box.root, BOX_USER)
    ssh_dir = box.root / "home" / BOX_USER / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized_keys = ssh_dir / "authorized_keys"
    shutil.copyfile(box.private_key.with_suffix(".pub"), authorized_keys)
    authorized_keys.chmod(0o600)
    for path in (ssh_dir, authorized_keys):
        os.chown(path, uid, gid)


def write_known_hosts(box: Box) -> None:
    """Pins the box's own host key, so Ansible and the tests can keep StrictHostKeyChecking on."""
    host_key = (box.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
    # ssh names a host on port 22 without brackets and the port.
    name = box.ssh_host if box.ssh_port == 22 else f"[{box.ssh_host}]:{box.ssh_port}"
    box.known_hosts.write_text(f"{name} {host_key[0]} {host_key[1]}\n")


def sync_host_cas(box: Box) -> bool:
    """Mirrors the host's local CAs (the TLS-inspecting proxy's among them) into the box.

    Returns whether anything changed; the caller then runs update-ca-certificates inside.
    """
    box_ca_dir = box.root / "usr/local/share/ca-certificates"
    box_ca_dir.mkdir(parents=True, exist_ok=True)
    host_certs = {path.name: path for path in HOST_CA_DIR.glob("*.crt")} if HOST_CA_DIR.is_dir() else {}
    changed = False
    for stale in box_ca_dir.glob("*.crt"):
        if stale.name not in host_certs:
            stale.unlink()
            changed = True
    for name, host_cert in host_certs.items():
        target = box_ca_dir / name
        if not target.exists() or not filecmp.cmp(host_cert, target, shallow=False):
            shutil.copyfile(host_cert, target)
            target.chmod(0o644)
            changed = True
    return changed
