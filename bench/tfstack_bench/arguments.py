"""The command line of tfstack-bench: its arguments, checked, with one-line errors."""

from __future__ import annotations

import argparse
import datetime
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfstack_bench.report import DEFAULT_TEMPLATES, REPOSITORY


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(item) for item in text.split(",") if item.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not levels or levels[0] < 1 or levels[-1] > 64:
        raise argparse.ArgumentTypeError("client counts must be between 1 and 64")
    return levels


def _shapes(text: str) -> list[tuple[int, int]]:
    shapes = []
    for item in text.split(","):
        workers, _, threads = item.strip().partition("x")
        if not (workers.isdigit() and threads.isdigit() and int(workers) > 0 and int(threads) > 0):
            raise argparse.ArgumentTypeError(f"expected WORKERSxTHREADS like 2x4, got {item!r}")
        shapes.append((int(workers), int(threads)))
    return shapes


_VARIANT_LABEL = re.compile(r"[a-z0-9][a-z0-9-]*")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _web_variant(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """LABEL:NAME=VALUE[;NAME=VALUE...] -> (label, ((name, value), ...))."""
    label, colon, settings = text.partition(":")
    if not colon or not _VARIANT_LABEL.fullmatch(label):
        raise argparse.ArgumentTypeError(
            f"expected LABEL:NAME=VALUE, the label of a-z, 0-9 and '-', got {text!r}"
        )
    variables = []
    for item in settings.split(";"):
        name, equals, value = item.partition("=")
        if not equals or not _VARIABLE_NAME.fullmatch(name):
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE after {label}:, got {item!r}")
        variables.append((name, value))
    return label, tuple(variables)


def _transports(text: str) -> list[str]:
    names = [item.strip() for item in text.split(",") if item.strip()]
    if not names or set(names) - {"rest", "grpc"}:
        raise argparse.ArgumentTypeError(f"transports are rest and/or grpc, got {text!r}")
    return list(dict.fromkeys(names))


def positive(kind: type) -> Any:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        return value

    return convert


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argument type for a count: a whole number from `minimum` to `maximum` (no limit if None)."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text!r}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {text!r}")
        return value

    return convert


def build_parser() -> argparse.ArgumentParser:
    today = datetime.date.today().isoformat()
    parser = OneLineParser(
        prog="tfstack-bench",
        description="Benchmark the serving paths of tfserving-stack: the SavedModel called in-process (the "
        "floor), TF Serving over REST and gRPC, the web front end (and a load balancer), gunicorn serving "
        "apps that do nothing (the floor of the hop into the front end), at several "
        "numbers of concurrent clients, interleaved so machine noise hits every path alike; then the "
        "cold start of a new version and its rollout time. Without URLs it starts its own stack on "
        "loopback (the TF Serving stand-in and gunicorn), in a private network namespace when run as root.",
        epilog="Writes OUTPUT/report.md, latency.png, throughput.png, coldstart.png and results.json. "
        "Every burst is bounded in requests and in seconds.",
    )
    where = parser.add_argument_group("what to measure (default: a stack of its own on loopback)")
    where.add_argument("--rest-url", help="TF Serving REST of a running stack, e.g. http://127.0.0.1:8501")
    where.add_argument("--grpc-target", help="TF Serving gRPC of a running stack, e.g. 127.0.0.1:8500")
    where.add_argument("--web-url", help="the web front end of a running stack, e.g. http://127.0.0.1:8080")
    where.add_argument("--lb-url", help="the web front end through a load balancer (adds the path 'lb')")
    where.add_argument("--model", default="digits", help="model name (default digits)")
    where.add_argument(
        "--model-base",
        type=Path,
        default=REPOSITORY / "serving_model" / "digits",
        help="the model's base path (numbered versions): served by the own stack, loaded for the "
        "in-process floor, copied for the cold start (default <repository>/serving_model/digits)",
    )
    where.add_argument(
        "--no-floor",
        action="store_true",
        help="leave out all floors: the in-process SavedModel, and gunicorn-floor and grpc-relay-floor "
        "(gunicorn on this machine's loopback serving apps that do nothing)",
    )
    own = parser.add_argument_group("the stack of its own")
    own.add_argument(
        "--web-transports",
        type=_transports,
        default=["grpc", "rest"],
        help="one gunicorn per transport to TF Serving, paths web-grpc, web-rest; the issue's targets are "
        "checked on the first (default grpc,rest: gRPC is the measured choice for deployments)",
    )
    own.add_argument(
        "--web-shapes",
        type=_shapes,
        default=None,
        help="gunicorn WORKERSxTHREADS to compare, e.g. 1x8,2x4,4x2 (default: the deployment's own)",
    )
    own.add_argument(
        "--web-source",
        type=Path,
        help="run the web front end from this folder's tfserving_web (another checkout's webapp/), "
        "to compare versions",
    )
    own.add_argument(
        "--web-variant",
        dest="web_variants",
        type=_web_variant,
        action="append",
        default=[],
        metavar="LABEL:NAME=VALUE[;NAME=VALUE]",
        help="one more gunicorn of the web front end (the first transport, the deployment's shape) with "
        "these environment variables added, measured in the same interleaved run as path "
        "web-<transport>-LABEL; repeatable. E.g. 'no-storing:TFWEB_STORE_UPLOADS=false', or "
        "'heartbeat-on-disk:GUNICORN_CMD_ARGS=--worker-tmp-dir=/tmp' (gunicorn's options override "
        "its config module's)",
    )
    own.add_argument("--no-netns", action="store_true", help="do not run in a private network namespace")
    load_group = parser.add_argument_group("load")
    load_group.add_argument(
        "--levels", type=_levels, default=[1, 2, 4, 8, 16], help="concurrent clients (default 1,2,4,8,16)"
    )
    load_group.add_argument("--rounds", type=positive(int), default=3, help="interleaved rounds (default 3)")
    load_group.add_argument(
        "--cell-seconds",
        type=positive(float),
        default=2.0,
        help="seconds per path, level and round (default 2)",
    )
    load_group.add_argument(
        "--cell-requests",
        type=positive(int),
        default=4000,
        help="at most this many requests per path, level and round (default 4000)",
    )
    load_group.add_argument(
        "--coldstart-repeats",
        type=whole_number(0),
        default=3,
        help="rollouts of each kind (with, without warmup records) for the cold start; 0 skips (default 3)",
    )
    load_group.add_argument("--seed", type=int, default=12, help="seed of the interleaving order")
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output",
        type=Path,
        default=REPOSITORY / "bench" / "results" / today,
        help=f"folder for the report (default <repository>/bench/results/{today}; files in it are replaced)",
    )
    out.add_argument(
        "--templates", type=Path, default=DEFAULT_TEMPLATES, help="the project's templates folder"
    )
    out.add_argument("--raw-latencies", action="store_true", help="keep every latency in results.json")
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The arguments, and the checks that involve more than one of them (one line each)."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    labels = [label for label, _ in arguments.web_variants]
    if len(set(labels)) < len(labels):
        parser.error("each --web-variant needs a label of its own")
    if arguments.web_variants and (arguments.rest_url or arguments.grpc_target or arguments.web_url):
        parser.error("--web-variant starts a gunicorn of the bench's own stack: not with given URLs")
    return arguments
