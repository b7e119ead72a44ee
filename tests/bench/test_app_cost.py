"""tfstack-bench-app (the web front end's own cost per prediction) in miniature: 20 requests through
the app built in-process against a real stand-in, figures printed and sane."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tfstack_bench import app_cost

BENCH_APP = Path(sys.executable).parent / "tfstack-bench-app"
FIGURES = {
    "wall": r"wall time per request, p50\s+([0-9.]+) ms",
    "cpu": r"CPU time per request\s+([0-9.]+) ms",
    "thread_cpu": r"of which the calling thread\s+([0-9.]+) ms",
    "call": r"model-server call, p50\s+([0-9.]+) ms",
    "own": r"the app's own part, p50\s+([0-9.]+) ms",
    "writer": r"upload writer, CPU per upload\s+([0-9.]+) ms",
}


def test_help_and_bad_input() -> None:
    helped = subprocess.run([str(BENCH_APP), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0
    assert "--requests" in helped.stdout and "--profile" in helped.stdout
    bad = subprocess.run([str(BENCH_APP), "--requests", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "option", "value"),
    [
        (["--warmup", "-1"], "--warmup", "-1"),
        (["--profile", "-3"], "--profile", "-3"),
        (["--warmup", "100001"], "--warmup", "100001"),
        (["--requests", "100001"], "--requests", "100001"),
    ],
)
def test_counts_out_of_range_are_refused_while_parsing(
    argv: list[str], option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused by the argument's type, so argparse's one line names the option and the value given."""
    with pytest.raises(SystemExit) as exited:
        app_cost.main(argv)
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith(f"tfstack-bench-app: argument {option}: "), stderr
    assert repr(value) in stderr, stderr


@pytest.mark.slow
@pytest.mark.usefixtures("digits_model")
def test_a_tiny_run_prints_the_figures_and_the_profile() -> None:
    command = [str(BENCH_APP), "--requests=20", "--warmup=5", "--max-seconds=60", "--profile=5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "20 requests over grpc" in result.stdout
    figures = {}
    for name, pattern in FIGURES.items():
        found = re.search(pattern, result.stdout)
        assert found, f"no {name} figure in:\n{result.stdout}"
        figures[name] = float(found.group(1))
    assert all(value > 0 for value in figures.values()), figures
    # The model-server call happens inside the request, so both parts are less than the whole.
    assert figures["call"] < figures["wall"] and figures["own"] < figures["wall"]
    assert figures["thread_cpu"] <= figures["cpu"]
    # Warm-up, measured and profiled requests: every upload stored, by the writer's own process.
    assert "; 45 uploads stored by its own process" in result.stdout
    profile = result.stdout.split("the 5 functions with the most own time")[1]
    assert "function calls" in profile and "tottime" in profile
    assert "could not store upload" not in result.stderr  # the queue is drained before its folder goes
