"""A value built once in each worker process (connection pools, gRPC channels)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """Builds a value on first use in each process: connection pools and gRPC channels must not be
    shared across gunicorn's fork (which would happen with --preload)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: tuple[int, T] | None = None

    def __call__(self) -> T:
        # Every request asks several of these: once built, no lock (the pair is replaced as a whole).
        built = self._built
        if built is not None and built[0] == os.getpid():
            return built[1]
        with self._lock:
            built = self._built
            if built is None or built[0] != os.getpid():
                built = self._built = (os.getpid(), self._build())
            return built[1]
