"""Preconditions on the host, each failing with a one-line reason."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess

from .errors import BoxError

# Debian package that provides each host tool the box needs.
HOST_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "nsenter": "util-linux",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "tar": "tar",
    "zstd": "zstd",
}


def require_root(command: str) -> None:
    if os.geteuid() != 0:
        raise BoxError(f"'box {command}' must run as root (systemd-nspawn and debootstrap need it); try sudo")


def missing_tools() -> list[str]:
    return [tool for tool in HOST_TOOLS if shutil.which(tool) is None]


def ensure_host_tools() -> None:
    """Installs debootstrap, systemd-container, ... with apt when missing (issue 5 asks for that)."""
    missing = missing_tools()
    if not missing:
        return
    packages = sorted({HOST_TOOLS[tool] for tool in missing})
    if shutil.which("apt-get") is None:
        raise BoxError(
            f"{', '.join(missing)} not found and there is no apt-get to install {' '.join(packages)}"
        )
    print(f"box: installing {' '.join(packages)} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        if subprocess.run(argv, env=env, check=False).returncode != 0:
            raise BoxError(f"{', '.join(missing)} not found and '{' '.join(argv)}' failed")
    still_missing = missing_tools()
    if still_missing:
        raise BoxError(f"{', '.join(still_missing)} still not found after installing {' '.join(packages)}")


def ensure_port_free(host: str, port: int) -> None:
    """Fails if something on the host already listens on host:port (the box shares the host's network)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # sshd sets SO_REUSEADDR too, so a leftover TIME_WAIT connection is not mistaken for a listener.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
        probe.listen(1)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise BoxError(
                f"port {host}:{port} is already taken on this host; free it or pick another with --ssh-port"
            ) from None
        raise BoxError(f"cannot use port {host}:{port}: {error.strerror}") from None
    finally:
        probe.close()
