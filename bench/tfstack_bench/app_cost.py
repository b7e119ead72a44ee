"""tfstack-bench-app: what the web front end's own Python costs per prediction, with no gunicorn and no
HTTP in the way, so a change to the app can be measured (and its figures rerun) on its own.

Starts the TF Serving stand-in, builds the app in this process with `tfserving_web.create_app()`,
configured as `stack.start_web` configures gunicorn's (TFWEB_* variables, Prometheus' multiprocess
folder as gunicorn_conf sets it), and calls its WSGI application one request at a time with multipart
uploads of held-out digits, each with a boundary of its own, as `make bench` sends them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from tfserving_web import create_app
from tfstack_bench import inputs, netns, paths, stack
from tfstack_bench.arguments import OneLineParser, positive, whole_number
from tfstack_bench.report import REPOSITORY

PROG = "tfstack-bench-app"
IMAGE_COUNT = 16
BODY_COUNT = 64
MAX_REQUESTS = 100_000

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="The web front end's own cost per prediction: builds the app in this process "
        "(tfserving_web.create_app(), TFWEB_* settings as the bench's gunicorn gets them), calls its WSGI "
        "application with multipart uploads one at a time, and prints the p50 wall time per request, the "
        "process CPU time per request (and the calling thread's), the p50 of the model-server call alone "
        "(the answers' latency_ms), the p50 of the difference per request (the app's own part), and the "
        "CPU the upload writer process spends per stored upload. Starts "
        "its own TF Serving stand-in on loopback (in a private network namespace when run as root).",
        epilog="Bounded: at most --requests requests and --max-seconds seconds per loop (warm-up, "
        "measurement, profile). To compare two versions of the app, run two at once, one with "
        "PYTHONPATH=<other checkout>/webapp, so both share the machine's load, a few times over, and "
        "compare the medians: on a busy machine runs in turn differ by more than a small change.",
    )
    parser.add_argument(
        "--requests",
        type=whole_number(1, MAX_REQUESTS),
        default=2000,
        help=f"requests measured, at most {MAX_REQUESTS} (default 2000)",
    )
    parser.add_argument(
        "--warmup",
        type=whole_number(0, MAX_REQUESTS),
        default=200,
        help=f"requests sent first, not measured, at most {MAX_REQUESTS} (default 200)",
    )
    parser.add_argument(
        "--max-seconds",
        type=positive(float),
        default=120.0,
        help="each loop stops after this many seconds, even short of its count (default 120)",
    )
    parser.add_argument(
        "--transport", choices=["grpc", "rest"], default="grpc", help="to TF Serving (default grpc)"
    )
    parser.add_argument(
        "--profile",
        type=whole_number(0),
        default=0,
        metavar="N",
        help="then profile as many requests again (cProfile) and print the N functions with the most "
        "own time (default 0: no profile)",
    )
    parser.add_argument("--model", default="digits", help="model name (default digits)")
    parser.add_argument(
        "--model-base",
        type=Path,
        default=REPOSITORY / "serving_model" / "digits",
        help="the model's base path with numbered versions (default <repository>/serving_model/digits)",
    )
    parser.add_argument("--no-netns", action="store_true", help="do not run in a private network namespace")
    return parser


class Uploads:
    """WSGI environs of POST /api/predict with a multipart upload, built before the clock runs."""

    def __init__(self, images: list[bytes]) -> None:
        self._requests = []
        for index in range(BODY_COUNT):
            boundary = uuid.uuid4().hex
            body = paths.multipart_body(images[index % len(images)], boundary)
            self._requests.append((body, f"multipart/form-data; boundary={boundary}"))

    def environ(self, index: int) -> dict[str, Any]:
        body, content_type = self._requests[index % len(self._requests)]
        return {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/api/predict",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8080",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }


def call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, bytes]:
    """(status line, body) of one request, as a WSGI server would read them."""
    statuses: list[str] = []
    answer = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        body = b"".join(answer)
    finally:
        if hasattr(answer, "close"):
            answer.close()
    return statuses[0], body


@dataclass
class Figures:
    requests: int
    wall_p50_ms: float
    cpu_per_request_ms: float
    thread_cpu_per_request_ms: float
    call_p50_ms: float
    own_p50_ms: float


def measure(app: WsgiApp, uploads: Uploads, count: int, max_seconds: float) -> Figures:
    """`count` requests one after the other (fewer if max_seconds runs out); answers are read after."""
    walls, answers = [], []
    deadline = time.monotonic() + max_seconds
    cpu_started, thread_started = time.process_time(), time.thread_time()
    for index in range(count):
        environ = uploads.environ(index)
        started = time.perf_counter()
        answers.append(call(app, environ))
        walls.append((time.perf_counter() - started) * 1000)
        if time.monotonic() > deadline:
            break
    cpu_ms = (time.process_time() - cpu_started) * 1000
    thread_ms = (time.thread_time() - thread_started) * 1000
    calls = [_latency_ms(status, body) for status, body in answers]
    return Figures(
        requests=len(walls),
        wall_p50_ms=statistics.median(walls),
        cpu_per_request_ms=cpu_ms / len(walls),
        thread_cpu_per_request_ms=thread_ms / len(walls),
        call_p50_ms=statistics.median(calls),
        own_p50_ms=statistics.median(wall - call for wall, call in zip(walls, calls, strict=True)),
    )


class RequestFailed(Exception):
    pass


def _latency_ms(status: str, body: bytes) -> float:
    if not status.startswith("200"):
        raise RequestFailed(f"POST /api/predict answered {status}: {body[:200]!r}")
    return float(json.loads(body)["latency_ms"])


def run_for(app: WsgiApp, uploads: Uploads, count: int, max_seconds: float) -> int:
    """Requests one after the other, unmeasured; returns how many were sent."""
    deadline = time.monotonic() + max_seconds
    for index in range(count):
        status, body = call(app, uploads.environ(index))
        _latency_ms(status, body)
        if time.monotonic() > deadline:
            return index + 1
    return count


def print_figures(figures: Figures, transport: str) -> None:
    print(f"{figures.requests} requests over {transport}, one at a time, the WSGI app called in this process")
    print(f"  wall time per request, p50     {figures.wall_p50_ms:7.3f} ms")
    print(
        f"  CPU time per request           {figures.cpu_per_request_ms:7.3f} ms  (this process, all threads)"
    )
    print(
        f"    of which the calling thread  {figures.thread_cpu_per_request_ms:7.3f} ms  "
        "(the app's Python and the gRPC call's own, without gRPC's and the upload queue's threads)"
    )
    print(f"  model-server call, p50         {figures.call_p50_ms:7.3f} ms  (the answers' latency_ms)")
    print(f"  the app's own part, p50        {figures.own_p50_ms:7.3f} ms  (wall - call, per request)")


def print_profile(app: WsgiApp, uploads: Uploads, arguments: argparse.Namespace) -> int:
    """Prints the profile; returns how many requests it took."""
    profile = cProfile.Profile()
    sent = profile.runcall(run_for, app, uploads, arguments.requests, arguments.max_seconds)
    print(f"\nthe {arguments.profile} functions with the most own time (cProfile, which slows every call):")
    stats = pstats.Stats(profile, stream=sys.stdout)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(arguments.profile)
    return sent


def print_writer_cpu(stored: int, before: resource.struct_rusage) -> None:
    """The upload writer's CPU per stored upload: it is this process's one child that has ended (the
    stand-in still runs), so the children's usage since `before` is the writer's. On a machine of few
    cores its CPU is taken from the answering processes' (the web worker's, TF Serving's)."""
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user_ms = (after.ru_utime - before.ru_utime) * 1000 / max(stored, 1)
    system_ms = (after.ru_stime - before.ru_stime) * 1000 / max(stored, 1)
    print(
        f"  upload writer, CPU per upload   {user_ms + system_ms:7.3f} ms  "
        f"(user {user_ms:.3f}, system {system_ms:.3f}; {stored} uploads stored by its own process)"
    )


def close(app: Flask) -> int | None:
    """Stores what the upload queue holds and closes the channel, before the folders go. Returns how
    many uploads were not stored (the queue was full); None when storing is off."""
    queue = app.extensions["upload_queue"]
    dropped = None
    if queue is not None:
        queue().close()
        dropped = queue().dropped
    app.extensions["tfserving_client"]().close()
    return dropped


def configure(workdir: Path, standin: stack.Standin, arguments: argparse.Namespace) -> None:
    """As stack.start_web sets gunicorn's environment, and gunicorn_conf the multiprocess folder (which
    prometheus_client reads when it is first imported: before the app is built)."""
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    os.environ.update(stack.web_settings(workdir / "instance", arguments.transport, standin, arguments.model))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def run(arguments: argparse.Namespace) -> None:
    paths.latest_version_dir(arguments.model_base)  # FileNotFoundError before anything starts
    images = inputs.digit_pngs(IMAGE_COUNT)
    workdir = Path(tempfile.mkdtemp(prefix="tfstack-bench-app-"))
    try:
        standin = stack.start_standin(workdir, {arguments.model: arguments.model_base})
        try:
            configure(workdir, standin, arguments)
            children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            app = create_app()
            try:
                uploads = Uploads(images)
                sent = run_for(app, uploads, arguments.warmup, arguments.max_seconds)
                figures = measure(app, uploads, arguments.requests, arguments.max_seconds)
                print_figures(figures, arguments.transport)
                if arguments.profile > 0:
                    sent += print_profile(app, uploads, arguments)
            finally:
                dropped = close(app)
            if dropped is not None:
                print_writer_cpu(sent + figures.requests - dropped, children_before)
        finally:
            standin.process.stop()
    except BaseException:
        print(f"{PROG}: the stand-in's log is kept in {workdir}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = build_parser().parse_args(argv)
    if not arguments.no_netns and not netns.inside():
        netns.reexec("tfstack_bench.app_cost", argv, print)  # returns only when it cannot
    try:
        run(arguments)
    except (stack.StackError, RequestFailed, FileNotFoundError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"{PROG}: {first_line}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
