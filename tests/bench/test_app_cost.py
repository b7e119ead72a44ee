"""tfstack-bench-app (the web front end's own cost per prediction) in miniature: 20 requests through
the app built in-process against a real stand-in, figures printed and sane."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import SERVING_MODEL_DIR

BENCH_APP = Path(sys.executable).parent / "tfstack-bench-app"
FIGURES = {
    "wall": r"wall time per request, p50\s+([0-9.]+) ms",
    "cpu": r"CPU time per request\s+([0-9.]+) ms",
    "thread_cpu": r"of which the calling thread\s+([0-9.]+) ms",
    "call": r"model-server call, p50\s+([0-9.]+) ms",
    "own": r"the app's own part, p50\s+([0-9.]+) ms",
}


def test_help_and_bad_input() -> None:
    helped = subprocess.run([str(BENCH_APP), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0
    assert "--requests" in helped.stdout and "--profile" in helped.stdout
    bad = subprocess.run([str(BENCH_APP), "--requests", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_tiny_run_prints_the_figures_and_the_profile() -> None:
    if not any(child.name.isdigit() for child in (SERVING_MODEL_DIR / "digits").iterdir()):
        pytest.fail("serving_model/digits is missing: run `make models-if-missing`")
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
    profile = result.stdout.split("the 5 functions with the most own time")[1]
    assert "function calls" in profile and "tottime" in profile
    assert "could not store upload" not in result.stderr  # the queue is drained before its folder goes
