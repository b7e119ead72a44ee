"""Builds the Debian root file system once with debootstrap and caches it as a tarball.

The tarball's name carries a key of everything that shapes it (suite, mirror, package list,
recipe version), so changing the list builds a new one and later boxes unpack it in seconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BoxError
from .settings import BOX_USER, cache_dir

SUITE = "bookworm"
# Plain http: the archive is signed, and HTTPS would go through the TLS-inspecting proxy.
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
VARIANT = "minbase"
# What a Vagrant base box has plus what Ansible and testinfra use on the target.
PACKAGES = (
    "systemd",
    "systemd-sysv",  # /sbin/init, poweroff, ...
    "dbus",  # hostnamectl, timedatectl and logind need the system bus
    "sudo",
    "openssh-server",
    "ca-certificates",
    "python3",
    "python3-apt",  # ansible.builtin.apt
    "python3-debian",  # ansible.builtin.deb822_repository
    "iproute2",  # ss: testinfra's socket checks
    "procps",  # ps: testinfra's process checks
    "gpgv",  # apt verifies signed repositories
    "less",
)
# Bump when the recipe below changes in a way the package list does not show.
RECIPE_VERSION = 1
# Timers that would take the dpkg lock under Ansible's feet, or touch disks a container has not got.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
)
TAR_OPTIONS = ("--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "--zstd")


def image_key() -> str:
    recipe = "\n".join([SUITE, MIRROR, SECURITY_MIRROR, VARIANT, str(RECIPE_VERSION), *sorted(PACKAGES)])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def image_dir() -> Path:
    return cache_dir() / "box"


def image_path(key: str | None = None) -> Path:
    return image_dir() / f"debian-{SUITE}-{key or image_key()}.tar.zst"


@contextmanager
def _image_lock() -> Iterator[None]:
    image_dir().mkdir(parents=True, exist_ok=True)
    with open(image_dir() / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two boxes coming up at once build the image once
        yield


def _run(argv: list[str], what: str, log: Path | None = None) -> None:
    if log is None:
        result = subprocess.run(argv, check=False, capture_output=True, text=True)
        output = result.stdout + result.stderr
    else:
        with open(log, "a") as log_stream:
            result = subprocess.run(argv, check=False, stdout=log_stream, stderr=subprocess.STDOUT)
        output = log.read_text(errors="replace")
    if result.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise BoxError(f"{what} failed (exit {result.returncode})", detail=tail)


def _chroot(root: Path, *argv: str) -> None:
    # chroot, not systemd-nspawn: these steps need neither /proc nor a network, and nspawn
    # would create cgroups on a host whose PID 1 is not systemd.
    _run(["chroot", str(root), *argv], f"'{' '.join(argv)}' in the new root")


def _customise(root: Path) -> None:
    """What every box shares: the sudo user, the apt sources, no per-machine identity."""
    (root / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\n"
        f"deb {MIRROR} {SUITE}-updates main\n"
        f"deb {SECURITY_MIRROR} {SUITE}-security main\n"
    )
    # Fixed uid so the key files written from the host get the right owner.
    _chroot(
        root, "useradd", "--create-home", "--uid", "1000", "--user-group", "--shell", "/bin/bash", BOX_USER
    )
    # '*' = no password, but not locked: sshd refuses key logins to locked accounts.
    _chroot(root, "usermod", "--password", "*", BOX_USER)
    sudoers = root / "etc/sudoers.d" / BOX_USER
    sudoers.write_text(f"{BOX_USER} ALL=(ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)
    _chroot(root, "systemctl", "mask", *MASKED_UNITS)
    _chroot(root, "apt-get", "clean")
    # Identity is made per box: host keys, machine id and hostname must not be shared.
    for host_key in (root / "etc/ssh").glob("ssh_host_*"):
        host_key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)


def build_image() -> Path:
    """Returns the cached tarball for the current package list, building it when missing."""
    with _image_lock():
        tarball = image_path()
        if tarball.exists():
            return tarball
        started = time.monotonic()
        print(f"box: building the Debian {SUITE} image with debootstrap (once; about a minute)", flush=True)
        debs = image_dir() / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=image_dir(), prefix=".build-") as work:
            root = Path(work) / "root"
            log = Path(work) / "debootstrap.log"
            _run(
                [
                    "debootstrap",
                    f"--variant={VARIANT}",
                    f"--include={','.join(PACKAGES)}",
                    f"--cache-dir={debs}",
                    SUITE,
                    str(root),
                    MIRROR,
                ],
                "debootstrap",
                log=log,
            )
            _customise(root)
            partial = tarball.with_name(tarball.name + ".partial")
            _run(
                ["tar", "--create", *TAR_OPTIONS, "-C", str(root), "-f", str(partial), "."],
                "packing the image",
            )
            partial.rename(tarball)
        for stale in image_dir().glob(f"debian-{SUITE}-*.tar.zst"):
            if stale != tarball:
                stale.unlink()  # a changed package list replaces the old image
        size_mib = tarball.stat().st_size / 2**20
        print(
            f"box: image built in {time.monotonic() - started:.0f} s ({size_mib:.0f} MiB): {tarball}",
            flush=True,
        )
        return tarball


def unpack_image(tarball: Path, root: Path) -> None:
    root.mkdir(parents=True)
    _run(["tar", "--extract", *TAR_OPTIONS, "-C", str(root), "-f", str(tarball)], "unpacking the image")
