"""The one exception type the command lines turn into a one-line message, and the wrapper that does it."""

from __future__ import annotations

import sys
from collections.abc import Callable


class BoxError(Exception):
    """An expected failure: printed as one line (plus optional detail), exit status 1, no traceback."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def run_reporting_errors(prog: str, action: Callable[[], int | None]) -> int:
    """Runs a command; an expected failure is one line (plus detail) and exit 1, Ctrl-C exit 130."""
    try:
        return action() or 0
    except BoxError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        if error.detail:
            print(error.detail, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
