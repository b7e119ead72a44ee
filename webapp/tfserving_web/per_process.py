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
        self._pid: int | None = None
        self._value: T | None = None

    def __call__(self) -> T:
        with self._lock:
            if self._pid != os.getpid():
                self._value, self._pid = self._build(), os.getpid()
            return self._value  # type: ignore[return-value]
