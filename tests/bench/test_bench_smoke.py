"""tfstack-bench (make bench) in miniature: its whole code path with tiny counts, so the benchmark
keeps working without being part of every test run. The real run is `make bench`."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tfstack_bench import load, machine, summary

BENCH = Path(sys.executable).parent / "tfstack-bench"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_interleaved_schedule_runs_every_path_once_per_level_and_round_in_changing_orders() -> None:
    plan = load.interleaved_schedule(["a", "b", "c", "d"], [1, 8], rounds=3, seed=1)
    assert len(plan) == 4 * 2 * 3
    for round_number in (1, 2, 3):
        for clients in (1, 8):
            cell = [p.path for p in plan if p.round == round_number and p.clients == clients]
            assert sorted(cell) == ["a", "b", "c", "d"]
    orders = {tuple(p.path for p in plan[i : i + 4]) for i in range(0, len(plan), 4)}
    assert len(orders) > 1


def test_cpu_idle_reads_the_driver_and_the_latency_limit_a_process_holds(tmp_path: Path) -> None:
    (tmp_path / "current_driver").write_text("haltpoll\n")
    (tmp_path / "current_governor").write_text("menu\n")
    request = tmp_path / "cpu_dma_latency"
    request.write_bytes(struct.pack("i", 0))
    assert machine.cpu_idle(tmp_path, request) == {
        "driver": "haltpoll",
        "governor": "menu",
        "latency_limit_us": 0,
    }
    assert machine.cpu_idle(tmp_path / "none", tmp_path / "none") == {
        "driver": None,
        "governor": None,
        "latency_limit_us": None,
    }


def test_cpu_idle_sees_a_latency_limit_held_on_this_kernel() -> None:
    device = Path("/dev/cpu_dma_latency")
    before = machine.cpu_idle()["latency_limit_us"]
    if before is None or before < 1:
        pytest.skip("no readable /dev/cpu_dma_latency (needs root), or a process holds 0 already")
    held = min(before - 1, 123_456)  # below whatever else is held: the lowest request wins
    descriptor = os.open(device, os.O_WRONLY)
    try:
        os.write(descriptor, struct.pack("i", held))
        assert machine.cpu_idle()["latency_limit_us"] == held
    finally:
        os.close(descriptor)  # closing drops the request
    assert machine.cpu_idle()["latency_limit_us"] == before


def test_percentiles_interpolate_like_numpy() -> None:
    assert summary.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert summary.percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert summary.percentile([7.0], 99) == 7.0


def test_steal_is_the_hypervisors_share_of_the_cpu_time_between_two_readings(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 50 0 25 400 5 0 0 20 0 0\n")
    before = machine.cpu_times(stat)
    stat.write_text("cpu  150 0 70 910 10 0 0 100 0 0\ncpu0 75 0 35 455 5 0 0 50 0 0\n")
    after = machine.cpu_times(stat)
    assert machine.stolen_percent(before, after) == 25.0  # 60 of the 240 ticks in between
    assert machine.stolen_percent(after, after) is None  # no time passed
    stat.write_text("cpu  1 2 3 4\n")  # a kernel without the steal column
    assert machine.cpu_times(stat) is None
    assert machine.cpu_times(tmp_path / "missing") is None
    assert machine.stolen_percent(None, after) is None


def test_context_switches_count_every_hand_off_between_two_threads() -> None:
    """On the real /proc/stat: 500 round trips between two threads are at least 1,000 wake-ups."""
    ping, pong = threading.Event(), threading.Event()

    def answer() -> None:
        for _ in range(500):
            ping.wait()
            ping.clear()
            pong.set()

    partner = threading.Thread(target=answer)
    before = machine.cpu_times()
    partner.start()
    for _ in range(500):
        ping.set()
        pong.wait()
        pong.clear()
    partner.join()
    switches = machine.context_switches(before, machine.cpu_times())
    assert switches is not None and switches >= 1000


def test_context_switches_come_from_the_ctxt_line_and_are_pooled_per_request(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 10 0 0 40 0 0\nintr 7 1 2\nctxt 1000\nbtime 1\n")
    before = machine.cpu_times(stat)
    stat.write_text("cpu  150 0 70 910 10 0 0 100 0 0\nintr 9 1 2\nctxt 4500\nbtime 1\n")
    assert machine.context_switches(before, machine.cpu_times(stat)) == 3500
    stat.write_text("cpu  150 0 70 910 10 0 0 100 0 0\n")  # no ctxt line: no count, steal still read
    assert machine.cpu_times(stat) is not None
    assert machine.context_switches(before, machine.cpu_times(stat)) is None
    cells = [
        load.CellResult(1, 1, "a", latencies_ms=[1.0] * 10, context_switches=300),
        load.CellResult(2, 1, "a", latencies_ms=[1.0] * 30, context_switches=500),
    ]
    assert summary.summarize(cells)[0].switches_per_request == 20.0  # 800 over 40 requests
    cells.append(load.CellResult(3, 1, "a", latencies_ms=[1.0], context_switches=None))
    assert summary.summarize(cells)[0].switches_per_request is None


def test_the_runs_steal_weighs_each_burst_by_its_length() -> None:
    cells = [
        load.CellResult(1, 1, "a", elapsed_s=3.0, steal_percent=10.0),
        load.CellResult(1, 1, "b", elapsed_s=1.0, steal_percent=50.0),
        load.CellResult(1, 8, "a", elapsed_s=2.0, steal_percent=None),
    ]
    assert summary.steal_summary(cells) == {"mean": 20.0, "lowest_burst": 10.0, "highest_burst": 50.0}
    assert summary.steal_summary(cells[2:]) is None


def test_each_rounds_ratio_compares_the_two_paths_bursts_of_that_round() -> None:
    cells = [
        load.CellResult(1, 1, "web", latencies_ms=[3.0, 4.0, 5.0]),
        load.CellResult(1, 1, "rest", latencies_ms=[2.0]),
        load.CellResult(1, 8, "web", latencies_ms=[40.0]),  # not the p50 level
        load.CellResult(2, 1, "rest", latencies_ms=[1.0, 3.0]),
        load.CellResult(2, 1, "web", latencies_ms=[5.0]),
        load.CellResult(3, 1, "web", latencies_ms=[5.0]),  # REST answered nothing in round 3
        load.CellResult(3, 1, "rest"),
    ]
    assert summary.p50_ratios_by_round(cells, "web") == (2.0, 2.5)
    assert summary.p50_ratios_by_round(cells, "lb") == ()


def test_help_and_bad_input() -> None:
    helped = subprocess.run([str(BENCH), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0
    assert "--lb-url" in helped.stdout and "--web-url" in helped.stdout
    for argv in (
        ["--levels", "one,two"],
        ["--coldstart-repeats", "-1"],
        ["--web-variant", "Not A Label:TFWEB_STORE_UPLOADS=false"],
        ["--web-variant", "no-storing:TFWEB_STORE_UPLOADS"],
        ["--web-variant", "a:X=1", "--web-variant", "a:Y=2"],
        ["--web-variant", "a:X=1", "--web-url", "http://127.0.0.1:8080"],
    ):
        bad = subprocess.run([str(BENCH), *argv], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2, argv
        assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        assert argv[0] in bad.stderr, bad.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("digits_model")
def test_a_tiny_run_writes_the_report_plots_and_numbers(tmp_path: Path) -> None:
    output = tmp_path / "results"
    command = [
        str(BENCH),
        "--levels=1,2",
        "--rounds=1",
        "--cell-seconds=0.2",
        "--cell-requests=20",
        "--coldstart-repeats=1",
        "--web-variant=no-storing:TFWEB_STORE_UPLOADS=false;TFWEB_UPLOADS_KEPT=5",
        f"--output={output}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[ 16/16]" in result.stdout  # one progress line per burst: 8 paths x 2 levels
    results = json.loads((output / "results.json").read_text())
    paths = [path["name"] for path in results["paths"]]
    floors = ["gunicorn-floor", "grpc-relay-floor"]
    assert paths == ["in-process", "rest", "grpc", "web-grpc", "web-rest", "web-grpc-no-storing", *floors]
    rows = {(row["path"], row["clients"]): row for row in results["summary"]}
    assert set(rows) == {(path, clients) for path in paths for clients in (1, 2)}
    assert all(row["errors"] == 0 and row["requests"] > 0 and row["p50_ms"] > 0 for row in rows.values())
    assert results["headline"]["web_path"] == "web-grpc"
    # The floors are reference paths: measured like the web front end, judged against nothing.
    assert [v["web_path"] for v in results["verdicts"]] == ["web-grpc", "web-rest", "web-grpc-no-storing"]
    p50s = {cell["path"]: cell["p50_ms"] for cell in results["cells"] if cell["clients"] == 1}
    for v in results["verdicts"]:  # one round: its ratio is the pooled one
        assert v["p50_ratio_by_round"] == [pytest.approx(p50s[v["web_path"]] / p50s["rest"], abs=0.01)]
    variant = next(web for web in results["stack"]["web"] if web["path"] == "web-grpc-no-storing")
    assert (variant["transport"], variant["env"]) == (
        "grpc",
        {"TFWEB_STORE_UPLOADS": "false", "TFWEB_UPLOADS_KEPT": "5"},
    )
    floor = results["floor"]
    assert (floor["web_path"], floor["call_path"], floor["clients"]) == ("web-grpc", "grpc", 1)
    for path, key in [
        ("rest", "rest_ms"),
        ("grpc", "call_ms"),
        ("gunicorn-floor", "gunicorn_floor_ms"),
        ("grpc-relay-floor", "relay_floor_ms"),
        ("web-grpc", "web_ms"),
    ]:
        assert floor[key] == rows[(path, 1)]["p50_ms"]
    assert floor["hop_and_call_ms"] == pytest.approx(floor["gunicorn_floor_ms"] + floor["call_ms"])
    # The relay of the gRPC call answered through gunicorn, and the app is measured against it.
    assert floor["app_own_ms"] == pytest.approx(floor["web_ms"] - floor["relay_floor_ms"])
    assert {c["kind"] for c in results["coldstart"]["summary"]} == {
        "with warmup records",
        "without warmup records",
    }
    assert results["machine"]["cores"] >= 1
    steal = results["machine"]["steal_percent"]  # a Linux machine reports it, 0 on bare metal
    assert 0 <= steal["lowest_burst"] <= steal["mean"] <= steal["highest_burst"] <= 100
    assert all(0 <= cell["steal_percent"] <= 100 for cell in results["cells"])
    # Over a socket, every answer wakes a server thread and then the client that waited for it (the
    # in-process path may run its model on the calling thread, so it is left out).
    served = [cell for cell in results["cells"] if cell["path"] != "in-process"]
    assert served and all(cell["context_switches"] >= 2 * cell["completed"] for cell in served)
    web_switches = rows[("web-grpc", 1)]["switches_per_request"]
    assert floor["switches"]["web-grpc"] == web_switches >= 2
    report = (output / "report.md").read_text()
    for path in paths:
        assert f"`{path}`" in report
    assert "## Cold start and rollout" in report
    assert "## What the front end's time is made of" in report
    assert f"| CPU taken by the hypervisor (steal) | {steal['mean']}% " in report
    idle = results["machine"]["cpu_idle"]
    assert f"| idle cores | cpuidle driver {idle['driver'] or 'none'}, " in report
    bursts = [line for line in result.stdout.splitlines() if "round 1/1" in line]
    assert len(bursts) == 16 and all(re.search(r" steal +\d+\.\d%", line) for line in bursts)
    assert all(re.search(r" \d+\.\d switches/req", line) for line in bursts)
    assert f"| {web_switches:.1f} |" in report
    assert f"| {floor['hop_and_call_over_rest']:.2f}x |" in report
    for figure in ("latency.png", "throughput.png", "coldstart.png"):
        assert (output / figure).read_bytes().startswith(PNG_SIGNATURE)
        assert f"]({figure})" in report
