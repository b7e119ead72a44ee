"""Train the digits classifier on scikit-learn's bundled load_digits data and save it as a .keras file.

Shows per-epoch progress, prints the accuracy on a seeded, stratified 20% held-out split, and refuses
to save a model below --min-accuracy, so `make` never exports a bad model.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from model_export import cli
from model_export.dataset import DEFAULT_SEED, DEFAULT_TEST_FRACTION
from model_export.errors import PipelineError
from model_export.training import DEFAULT_EPOCHS


def parse_args() -> cli.argparse.Namespace:
    parser = cli.OneLineArgumentParser(description=__doc__)
    parser.add_argument(
        "--output",
        type=Path,
        default=cli.DEFAULT_DIGITS_KERAS,
        help="where to write the Keras model; must end in .keras (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=cli.positive_int,
        default=DEFAULT_EPOCHS,
        help="training epochs (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed for the split, the weights and the shuffling (default: %(default)s)",
    )
    parser.add_argument(
        "--min-accuracy",
        type=float,
        default=0.97,
        help="fail without saving when held-out accuracy is lower (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    return parser.parse_args()


def check_output_path(output: Path) -> None:
    if output.suffix != ".keras":
        raise PipelineError(f"output file must end in .keras (Keras 3 format): {output}")
    folder = output.parent if str(output.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise PipelineError(f"output folder is not a directory: {folder}")


def save_atomically(model: object, output: Path) -> None:
    """Write next to the target and rename, so a crash never leaves a half-written .keras file
    that `make` would take as up to date."""
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(prefix=f".{output.stem}-", suffix=".keras", dir=output.parent)
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        model.save(temporary)  # type: ignore[attr-defined]
        # mkstemp creates 0600 files; give the model the permissions a plain write would have.
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o666 & ~umask)
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)


def main() -> int:
    args = parse_args()
    check_output_path(args.output)
    cli.quiet_tensorflow()
    from model_export.dataset import load_digits_split
    from model_export.training import train_classifier

    split = load_digits_split(seed=args.seed, test_fraction=DEFAULT_TEST_FRACTION)
    print(
        f"training on {len(split.train_labels)} digits, holding out {len(split.test_labels)} "
        f"(seed {args.seed}, {args.epochs} epochs)",
        flush=True,
    )
    result = train_classifier(split, seed=args.seed, epochs=args.epochs, verbose=0 if args.quiet else 2)
    print(f"training time: {result.seconds:.1f} s")
    print(f"held-out accuracy: {result.test_accuracy:.4f} ({len(split.test_labels)} images)")
    if result.test_accuracy < args.min_accuracy:
        raise PipelineError(
            f"held-out accuracy {result.test_accuracy:.4f} is below --min-accuracy {args.min_accuracy}; "
            "model not saved"
        )
    try:
        save_atomically(result.model, args.output)
    except OSError as error:
        raise PipelineError(f"cannot write {args.output}: {error.strerror or error}") from None
    print(f"saved {args.output}")
    return 0


# The console script: expected errors become one line and an exit status.
entry_point = functools.partial(cli.run, main)
