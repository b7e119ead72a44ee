"""tfstack-bench: latency and throughput of every serving path in one interleaved run, cold start and
rollout time, written to <output>/report.md (+ PNG plots and results.json)."""

from __future__ import annotations

import argparse
import datetime
import importlib
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfstack_bench import coldstart, floor_apps, inputs, load, machine, netns, plots, report, summary
from tfstack_bench.arguments import parse
from tfstack_bench.paths import (
    DirectGrpc,
    InProcessFloor,
    RequestFailed,
    ServingPath,
    direct_rest,
    latest_version_dir,
    predict_requests,
    web_front_end,
)
from tfstack_bench.stack import GunicornShape, OwnStack, StackError, WebVariant, start_floor

IMAGE_COUNT = 16
WARMUP_REQUESTS = 300
WARMUP_SECONDS = 1.0
# The floors of the hop: path name -> (app in tfstack_bench.floor_apps, what it answers with).
FLOOR_APPS = {
    summary.GUNICORN_FLOOR: ("wsgi_app", "an empty WSGI app: the cost of the HTTP hop alone"),
    summary.RELAY_FLOOR: (
        "grpc_relay_app",
        "an app that only relays one prepared gRPC Predict to TF Serving: the hop and the call, nothing else",
    ),
}


class Progress:
    """One line per step, with the time since the start, flushed at once (make shows it live)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", flush=True)


@dataclass
class Setup:
    """The paths to measure and what the report says about the stack behind them."""

    paths: list[ServingPath] = field(default_factory=list)
    stack: dict[str, Any] = field(default_factory=dict)
    headline_web: str = "web"  # the web path the targets are checked on


def _deployment_gunicorn() -> GunicornShape:
    """gunicorn's worker class, workers, threads and heartbeat folder as the deployment's config module
    sets them on this machine."""
    conf = importlib.import_module("tfserving_web.gunicorn_conf")
    return GunicornShape(conf.worker_class, conf.workers, conf.threads, conf.worker_tmp_dir)


def _given_paths(arguments: argparse.Namespace, images: list[bytes], setup: Setup) -> None:
    if arguments.rest_url:
        setup.paths.append(direct_rest(arguments.rest_url, arguments.model, images))
    if arguments.grpc_target:
        setup.paths.append(DirectGrpc(arguments.grpc_target, arguments.model, images))
    if arguments.web_url:
        description = f"web front end at {arguments.web_url}"
        setup.paths.append(web_front_end(arguments.web_url, images, "web", description))
    setup.stack.update(mode="given URLs", rest_url=arguments.rest_url, grpc_target=arguments.grpc_target)


def _own_paths(
    arguments: argparse.Namespace,
    images: list[bytes],
    setup: Setup,
    running: ExitStack,
    workdir: Path,
    progress: Progress,
) -> None:
    deployed = _deployment_gunicorn()
    transport, shape = arguments.web_transports[0], (deployed.workers, deployed.threads)
    shapes = arguments.web_shapes or [shape]
    variants = [WebVariant(name, *each) for name in arguments.web_transports for each in shapes]
    variants += [WebVariant(transport, *shape, label, env) for label, env in arguments.web_variants]
    stack = running.enter_context(
        OwnStack(workdir, arguments.model, arguments.model_base, variants, arguments.web_source, progress)
    )
    assert stack.standin is not None
    setup.paths.append(direct_rest(stack.standin.rest_url, arguments.model, images))
    setup.paths.append(DirectGrpc(stack.standin.grpc_target, arguments.model, images))
    web = []
    for name, server in stack.web.items():
        variant = server.variant
        added = "".join(f", {variable}={value}" for variable, value in variant.env)
        description = (
            f"web front end POST /api/predict (multipart), gunicorn {variant.workers}x{variant.threads}, "
            f"{variant.transport} to TF Serving{added}"
        )
        setup.paths.append(web_front_end(server.url, images, name, description))
        web.append(
            {
                "path": name,
                "transport": variant.transport,
                "workers": variant.workers,
                "threads": variant.threads,
                "env": dict(variant.env),
            }
        )
    setup.stack.update(
        mode="own",
        rest_url=stack.standin.rest_url,
        grpc_target=stack.standin.grpc_target,
        network_namespace=netns.inside(),
        web=web,
        web_source=str(arguments.web_source) if arguments.web_source else None,
        headline_transport=transport,
        default_shape=f"{shape[0]}x{shape[1]}",
    )
    headline = WebVariant(transport, *shape).name(with_shape=len(shapes) > 1)
    setup.headline_web = headline if headline in stack.web else next(iter(stack.web))


def _floor_paths(
    model: str, images: list[bytes], setup: Setup, running: ExitStack, workdir: Path, progress: Progress
) -> None:
    """One gunicorn shaped like the deployment's per floor app, on this machine's loopback, measured
    with the web front end's client: what the hop (and the hop with the gRPC call) cost before the app
    works. The relay needs TF Serving's gRPC target: without one it is left out, and said so."""
    shape = _deployment_gunicorn()
    elsewhere = " (this machine's loopback, not the stack's hosts)"
    on_this_machine = "" if setup.stack["mode"] == "own" else elsewhere
    for name, (app, answering) in FLOOR_APPS.items():
        settings = _relay_settings(model, setup, workdir, images) if name == summary.RELAY_FLOOR else {}
        if settings is None:
            progress(f"leaving out {name}: no gRPC target to relay to (--grpc-target)")
            continue
        progress(f"starting gunicorn for {name}")
        server = start_floor(workdir, app, shape, name, settings)
        running.callback(server.process.stop)
        description = f"gunicorn {shape.workers}x{shape.threads} answering {answering}{on_this_machine}"
        setup.paths.append(web_front_end(server.url, images, name, description))
    setup.stack["floor_gunicorn"] = f"{shape.worker_class} {shape.workers}x{shape.threads}"


def _relay_settings(model: str, setup: Setup, workdir: Path, images: list[bytes]) -> dict[str, str] | None:
    """The relay floor's environment: the gRPC target, and one prepared request in a file."""
    target = setup.stack.get("grpc_target")
    if not target:
        return None
    request_file = workdir / "relay-request.bin"
    request_file.write_bytes(predict_requests(target, model, images[:1])[0])
    return {floor_apps.RELAY_TARGET_VARIABLE: target, floor_apps.RELAY_REQUEST_VARIABLE: str(request_file)}


def _start(
    arguments: argparse.Namespace, images: list[bytes], running: ExitStack, workdir: Path, progress: Progress
) -> Setup:
    """Start what has to run (the own stack) and open every path; `running` stops it all."""
    setup = Setup()
    if not arguments.no_floor:
        setup.paths.append(InProcessFloor(arguments.model_base, images))
    if arguments.given:
        _given_paths(arguments, images, setup)
    else:
        _own_paths(arguments, images, setup, running, workdir, progress)
    if arguments.lb_url:
        description = f"web front end through the load balancer at {arguments.lb_url}"
        setup.paths.append(web_front_end(arguments.lb_url, images, "lb", description))
    if not arguments.no_floor:
        _floor_paths(arguments.model, images, setup, running, workdir, progress)
    for path in setup.paths:
        progress(f"opening path {path.name}: {path.description}")
        path.open()
        running.callback(path.close)
    return setup


def _warm_up(paths: list[ServingPath], levels: list[int], progress: Progress) -> None:
    """Connections, caches and TF's first-call work happen here, not in the first measured cell."""
    for path in paths:
        for clients in (1, max(levels)):
            plan = load.CellPlan(0, clients, path.name)
            result = load.run_cell(path, plan, WARMUP_REQUESTS, WARMUP_SECONDS)
            if result.errors:
                raise RequestFailed(f"{path.name} failed while warming up: {result.first_error}")
        progress(f"warmed up {path.name}")


def _measure(
    paths: list[ServingPath], arguments: argparse.Namespace, progress: Progress
) -> list[load.CellResult]:
    by_name = {path.name: path for path in paths}
    plan = load.interleaved_schedule(list(by_name), arguments.levels, arguments.rounds, arguments.seed)
    cells = []
    for number, cell_plan in enumerate(plan, start=1):
        before = machine.cpu_times()
        result = load.run_cell(
            by_name[cell_plan.path], cell_plan, arguments.cell_requests, arguments.cell_seconds
        )
        after = machine.cpu_times()
        result.steal_percent = machine.stolen_percent(before, after)
        result.context_switches = machine.context_switches(before, after)
        cells.append(result)
        p50 = summary.percentile(sorted(result.latencies_ms), 50)
        machine_load = "" if result.steal_percent is None else f"  steal {result.steal_percent:4.1f}%"
        if result.context_switches is not None and result.completed:
            machine_load += f"  {result.context_switches / result.completed:5.1f} switches/req"
        failed = f", {result.errors} FAILED ({result.first_error})" if result.errors else ""
        where = f"[{number:3d}/{len(plan)}] round {cell_plan.round}/{arguments.rounds}"
        progress(
            f"{where} {cell_plan.clients:2d} clients {cell_plan.path:<14} {result.completed:5d} req  "
            f"p50 {p50:7.2f} ms  {result.throughput:7.1f} req/s{machine_load}{failed}"
        )
    return cells


def _cells_json(cells: list[load.CellResult], raw: bool) -> list[dict]:
    rows = []
    for cell in cells:
        ordered = sorted(cell.latencies_ms)
        row = {
            "round": cell.round,
            "clients": cell.clients,
            "path": cell.path,
            "completed": cell.completed,
            "errors": cell.errors,
            "first_error": cell.first_error,
            "elapsed_s": round(cell.elapsed_s, 4),
            "throughput": round(cell.throughput, 2),
            "steal_percent": cell.steal_percent,
            "context_switches": cell.context_switches,
            **{f"p{q}_ms": round(summary.percentile(ordered, q), 3) for q in (50, 95, 99)},
        }
        if raw:
            row["latencies_ms"] = [round(value, 3) for value in cell.latencies_ms]
        rows.append(row)
    return rows


@dataclass
class Measured:
    started: datetime.datetime
    machine: dict[str, Any]
    setup: Setup
    cells: list[load.CellResult]
    trials: list[coldstart.Trial]


def _write_report(
    arguments: argparse.Namespace, argv: list[str], measured: Measured, progress: Progress
) -> None:
    finished = datetime.datetime.now().astimezone()
    measured.machine["load_average_at_end"] = machine.load_average()
    measured.machine["steal_percent"] = summary.steal_summary(measured.cells)
    rows = summary.summarize(measured.cells)
    path_order = [path.name for path in measured.setup.paths]
    has_rest = "rest" in path_order
    web_paths = [name for name in path_order if name.startswith("web") or name == "lb"]
    verdicts = [summary.verdict(rows, measured.cells, name) for name in web_paths] if has_rest else []
    headline = next((v for v in verdicts if v.web_path == measured.setup.headline_web), None)
    call_path = "rest" if measured.setup.stack.get("headline_transport") == "rest" else "grpc"
    floor = summary.floor_breakdown(rows, measured.setup.headline_web, call_path)
    cold = summary.coldstart_summary(measured.trials)
    output: Path = arguments.output
    output.mkdir(parents=True, exist_ok=True)
    figures = {
        "latency": plots.latency_plot(rows, path_order, output / "latency.png").name,
        "throughput": plots.throughput_plot(rows, path_order, output / "throughput.png").name,
    }
    if cold:
        figures["coldstart"] = plots.coldstart_plot(cold, output / "coldstart.png").name
    results = {
        "started": measured.started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "duration_s": round((finished - measured.started).total_seconds(), 1),
        "command": " ".join(["tfstack-bench", *argv]),
        "machine": measured.machine,
        "settings": {
            "levels": arguments.levels,
            "rounds": arguments.rounds,
            "cell_seconds": arguments.cell_seconds,
            "cell_requests": arguments.cell_requests,
            "seed": arguments.seed,
            "images": f"{IMAGE_COUNT} held-out digits, {inputs.SIDE}x{inputs.SIDE} PNG",
            "coldstart_repeats": arguments.coldstart_repeats,
        },
        "stack": measured.setup.stack,
        "paths": [{"name": path.name, "description": path.description} for path in measured.setup.paths],
        "summary": [row.as_dict() for row in rows],
        "verdicts": [v.as_dict() for v in verdicts],
        "headline": headline.as_dict() if headline else None,
        "floor": floor.as_dict() if floor else None,
        "coldstart": {
            "summary": [c.as_dict() for c in cold],
            "trials": [vars(t) for t in measured.trials],
            "warm_requests": coldstart.WARM_REQUESTS,
        },
        "figures": figures,
        "cells": _cells_json(measured.cells, arguments.raw_latencies),
    }
    context = {
        **results,
        "rows": rows,
        "path_order": path_order,
        "limits": {"p50": summary.P50_RATIO_LIMIT, "throughput": summary.THROUGHPUT_RATIO_FLOOR},
        "p50_level": summary.P50_LEVEL,
        "throughput_level": summary.THROUGHPUT_LEVEL,
    }
    json_path = report.write_json(output, results)
    report_path = report.write_report(output, arguments.templates, context)
    progress(f"wrote {report_path}, {json_path} and {', '.join(figures.values())}")
    for v in verdicts:
        p50, throughput = summary.ratio_text(v.p50_ratio), summary.ratio_text(v.throughput_ratio)
        by_round = ", ".join(f"{ratio:.2f}" for ratio in v.p50_ratio_by_round)
        progress(
            f"{v.web_path}: p50 {p50} x REST (per round {by_round}; target <= {summary.P50_RATIO_LIMIT}), "
            f"throughput at {summary.THROUGHPUT_LEVEL} clients {throughput} x REST "
            f"(target >= {summary.THROUGHPUT_RATIO_FLOOR})"
        )
    if floor:
        relay = (
            f"an app relaying the gRPC call {floor.relay_floor_ms:.2f} ms "
            f"({floor.over_rest(floor.relay_floor_ms):.2f} x REST), "
            if floor.relay_floor_ms is not None
            else ""
        )
        progress(
            f"{floor.web_path} p50 {floor.web_ms:.2f} ms: hop + {floor.call_path} call "
            f"{floor.hop_and_call_ms:.2f} ms ({floor.over_rest(floor.hop_and_call_ms):.2f} x REST, a sum), "
            f"{relay}the app's own part {floor.app_own_ms:.2f} ms ({floor.app_own_basis})"
        )


def run(arguments: argparse.Namespace, argv: list[str], progress: Progress) -> None:
    arguments.given = any((arguments.rest_url, arguments.grpc_target, arguments.web_url))
    if not arguments.given and not arguments.no_netns and not netns.inside():
        netns.reexec("tfstack_bench", argv, progress)  # returns only when it cannot
    started = datetime.datetime.now().astimezone()
    description = machine.describe(report.REPOSITORY)
    progress(f"machine: {description['cpu']}, {description['cores']} cores, {description['memory_gib']} GiB")
    images = inputs.digit_pngs(IMAGE_COUNT)
    workdir = Path(tempfile.mkdtemp(prefix="tfstack-bench-"))
    try:
        with ExitStack() as running:
            setup = _start(arguments, images, running, workdir, progress)
            _warm_up(setup.paths, arguments.levels, progress)
            cells = _measure(setup.paths, arguments, progress)
        trials = []
        if arguments.coldstart_repeats > 0:
            source = latest_version_dir(arguments.model_base)
            trials = coldstart.measure(
                workdir / "coldstart", source, images[0], arguments.coldstart_repeats, progress
            )
    except BaseException:
        progress(f"the logs of the servers are kept in {workdir}")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    _write_report(arguments, argv, Measured(started, description, setup, cells, trials), progress)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = parse(argv)
    progress = Progress()
    try:
        run(arguments, argv, progress)
    except (StackError, RequestFailed, report.ReportError, FileNotFoundError, RuntimeError) as error:
        print(f"tfstack-bench: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("tfstack-bench: interrupted", file=sys.stderr)
        sys.exit(130)
