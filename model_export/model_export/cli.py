"""Command-line plumbing shared by the commands: one-line errors, no tracebacks, quiet TensorFlow."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from model_export import interrupts
from model_export.errors import PipelineError

# Relative to the working directory: the commands run from the repository root (as make does), where
# model_dir/ and serving_model/ are the project's folders for trained and exported models.
DEFAULT_SERVING_DIR = Path("serving_model")
DEFAULT_DIGITS_KERAS = Path("model_dir") / "digits.keras"

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints the usage block before a usage error; the project rule is one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def positive_int(text: str) -> int:
    """argparse type for version numbers: TF Serving only loads positive integer directory names."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def add_publication_arguments(parser: argparse.ArgumentParser) -> None:
    """--serving-dir, --version and --force: where and as which version a model is published."""
    parser.add_argument(
        "--serving-dir",
        type=Path,
        default=DEFAULT_SERVING_DIR,
        help="folder holding <name>/<version>/ (default: %(default)s)",
    )
    parser.add_argument(
        "--version", type=positive_int, help="version number to publish (default: highest existing + 1)"
    )
    parser.add_argument("--force", action="store_true", help="replace the version if it already exists")


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ info/warning lines; they would bury our own progress and errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run(main: Callable[[], int]) -> None:
    """Run a script's main() and turn expected failures into a one-line error and an exit status."""
    prog = Path(sys.argv[0]).name
    interrupts.install()
    try:
        status = main()
    except BaseException as error:
        if not (interrupts.requested() or isinstance(error, KeyboardInterrupt)):
            if not isinstance(error, PipelineError):
                raise  # a bug, not bad input: the traceback is what a developer needs
            print(f"{prog}: error: {error}", file=sys.stderr)
            status = EXIT_ERROR
        else:
            # The publication code has already removed its staging directory on the way out.
            print(f"{prog}: interrupted, nothing was published", file=sys.stderr)
            status = EXIT_INTERRUPTED
    sys.exit(status)
