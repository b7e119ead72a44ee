"""Loopback ports: a free one, and whether one accepts connections."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A currently free TCP port on loopback (the kernel's choice of ephemeral port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to host:port is accepted within `timeout` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
