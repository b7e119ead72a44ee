"""Ctrl-C and SIGTERM handling that stays clean inside TensorFlow.

A KeyboardInterrupt raised while TensorFlow's C++ code is calling back into Python comes out mangled:
TensorFlow prints its own traceback ("SystemError: ... returned a result with an exception set") and
the exception may arrive as another type. So while a version is being written (`deferred()`), the
first signal only records the request; the work stops at the next `check()` between steps, and the
publication code then removes its staging directory. A second signal stops at once. Outside
`deferred()` (loading, training) a signal raises KeyboardInterrupt immediately, as usual.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_signals_received = 0
_deferring = False


def _on_signal(signum: int, frame: object) -> None:
    global _signals_received
    _signals_received += 1
    if _deferring and _signals_received == 1:
        return
    # From here on nothing may cut the clean-up short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT and SIGTERM (`kill`, systemd stop) through the handler above."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)


def requested() -> bool:
    return _signals_received > 0


def check() -> None:
    """A safe point: stop here if an interrupt was requested meanwhile."""
    if requested():
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    global _deferring
    previous, _deferring = _deferring, True
    try:
        yield
    finally:
        _deferring = previous
