"""Waiting for a condition with a bounded time, the one polling loop the suites use."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], object],
    what: str,
    timeout: float = 60.0,
    interval: float = 0.2,
    tolerate: tuple[type[Exception], ...] = (),
) -> None:
    """Poll `condition` until it is truthy; fail the test after `timeout` seconds, naming `what`.

    Exceptions of the types in `tolerate` (a server still starting, say) count as "not yet"; the last
    one is named in the failure.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except tolerate as error:
            last_error = error
        time.sleep(interval)
    detail = f" (last error: {last_error})" if last_error else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")
