"""The one exception type the command line turns into a one-line message."""


class BoxError(Exception):
    """An expected failure: printed as one line (plus optional detail), exit status 1, no traceback."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail
