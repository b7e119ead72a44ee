"""Export a Keras image classifier (.keras) as a TF Serving SavedModel in <serving-dir>/<name>/<version>/.

Signatures: `serving_default` takes encoded image bytes (`image_bytes`, tf.string [None]: PNG, JPEG, GIF
or BMP; REST clients send {"b64": ...}) and decodes, converts to grayscale, resizes and scales inside
the graph; `predict_pixels` takes `pixels` float32 [None, H, W, C] in [0, 1]. Both return
`probabilities` float32 [None, classes] and `class_id` int64 [None].

The version is the next integer after the highest existing one, or --version N (an existing version is
replaced only with --force). The SavedModel is written under a hidden staging name, reloaded and
compared with the Keras model (max abs difference <= 1e-5), given warmup records, and only then renamed
to its version number. On any error nothing is left behind.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from model_export import cli, interrupts
from model_export.errors import PipelineError
from model_export.model_file import check_keras_file, first_line
from model_export.publication import plan_publication, publish

SAMPLE_COUNT = 16


def parse_args() -> cli.argparse.Namespace:
    parser = cli.OneLineArgumentParser(
        description=__doc__, formatter_class=cli.argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_file", type=Path, help="the Keras model file, e.g. model_dir/digits.keras")
    parser.add_argument("--name", help="model name, the folder under --serving-dir (default: file stem)")
    cli.add_publication_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    name = args.name or args.model_file.stem
    # Everything that can be checked without TensorFlow is checked first, so bad input fails fast.
    check_keras_file(args.model_file)
    plan = plan_publication(args.serving_dir, name, args.version, args.force)

    cli.quiet_tensorflow()
    from model_export import signatures as sig
    from model_export.dataset import encode_png_batch, sample_pixels
    from model_export.model_file import load_keras_model
    from model_export.verification import verify_digits
    from model_export.warmup import digits_warmup_logs, write_warmup_records

    started = time.perf_counter()
    model = load_keras_model(args.model_file)
    height, width, channels = sig.model_image_shape(model)
    pixels = sample_pixels(SAMPLE_COUNT, height, width, channels)

    def build(staging: Path) -> None:
        try:
            module = sig.build_digits_module(model)
            sig.save_module(module, sig.digits_signatures(module), str(staging))
            interrupts.check()
            write_warmup_records(staging, digits_warmup_logs(name, pixels))
        except PipelineError:
            raise
        except Exception as error:  # TensorFlow raises many types; the message is what matters.
            raise PipelineError(f"export failed: {first_line(error)}") from None
        interrupts.check()
        report = verify_digits(staging, model, pixels, encode_png_batch(pixels))
        print("\n".join(report.lines()))

    action = "replacing" if plan.replaces_existing else "exporting"
    print(f"{action} {args.model_file} as {name} version {plan.version} in {plan.model_root}", flush=True)
    target = publish(plan, build)
    print(f"published {target} ({time.perf_counter() - started:.1f} s)")
    return 0


# The console script: expected errors become one line and an exit status.
entry_point = functools.partial(cli.run, main)
