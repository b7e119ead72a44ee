"""Free loopback ports."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A currently free TCP port on loopback (the kernel's choice of ephemeral port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
