"""Build TF Serving's classic smoke-test model half_plus_two (y = 0.5 * x + 2) as a SavedModel.

Signature `serving_default`: input `x` float32 [None] -> output `y` float32 [None], so REST
{"instances": [1.0, 2.0, 5.0]} predicts [2.5, 3.0, 4.5]. Published like export_model.py: next version
(or --version N, --force to replace), hidden staging directory, verification, warmup records, rename.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from model_export import cli, interrupts
from model_export.errors import PipelineError
from model_export.model_file import first_line
from model_export.publication import plan_publication, publish


def parse_args() -> cli.argparse.Namespace:
    parser = cli.OneLineArgumentParser(description=__doc__)
    parser.add_argument("--name", default="half_plus_two", help="model name (default: %(default)s)")
    cli.add_publication_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    plan = plan_publication(args.serving_dir, args.name, args.version, args.force)

    cli.quiet_tensorflow()
    from model_export import signatures as sig
    from model_export.verification import verify_half_plus_two
    from model_export.warmup import half_plus_two_warmup_logs, write_warmup_records

    started = time.perf_counter()

    def build(staging: Path) -> None:
        try:
            module = sig.build_half_plus_two_module()
            sig.save_module(module, sig.half_plus_two_signatures(module), str(staging))
            interrupts.check()
            write_warmup_records(staging, half_plus_two_warmup_logs(args.name))
        except Exception as error:
            raise PipelineError(f"export failed: {first_line(error)}") from None
        interrupts.check()
        print("\n".join(verify_half_plus_two(staging).lines()))

    print(f"building {args.name} version {plan.version} in {plan.model_root}", flush=True)
    target = publish(plan, build)
    print(f"published {target} ({time.perf_counter() - started:.1f} s)")
    return 0


# The console script: expected errors become one line and an exit status.
entry_point = functools.partial(cli.run, main)
