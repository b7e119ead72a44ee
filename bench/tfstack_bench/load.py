"""Load generation: closed-loop clients (each sends its next request when the last one answered) and
the interleaved schedule that spreads machine noise over every path alike.

Every burst ("cell": one path, one number of clients, one round) is bounded both in requests and in
seconds, so a stuck server cannot keep the benchmark running.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tfstack_bench.paths import RequestFailed, ServingPath

# A client thread that has not finished this long after the cell's time is up is given up on.
JOIN_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class CellPlan:
    round: int
    clients: int
    path: str


@dataclass
class CellResult:
    round: int
    clients: int
    path: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0
    steal_percent: float | None = None  # of the machine's CPU time during the cell (machine.stolen_percent)
    context_switches: int | None = None  # of the whole machine during the cell (machine.context_switches)

    @property
    def completed(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0


def interleaved_schedule(paths: list[str], levels: list[int], rounds: int, seed: int) -> list[CellPlan]:
    """Round after round, each concurrency level in turn, the paths in a new random order each time:
    a slow minute of the machine lands on every path, not on the one that happened to run then."""
    rng = random.Random(seed)
    plan = []
    for round_number in range(1, rounds + 1):
        for clients in levels:
            order = list(paths)
            rng.shuffle(order)
            plan.extend(CellPlan(round_number, clients, path) for path in order)
    return plan


def run_cell(path: ServingPath, plan: CellPlan, max_requests: int, max_seconds: float) -> CellResult:
    """`plan.clients` threads send requests until `max_requests` were sent or `max_seconds` passed.

    Latencies of successful requests only; failures are counted (and the first one kept). Throughput
    is completed requests over the time from the common start to the last client's end.
    """
    result = CellResult(plan.round, plan.clients, plan.path)
    callers = [path.caller() for _ in range(plan.clients)]
    tickets: Iterator[int] = itertools.count()  # next() on a count is atomic under the GIL
    per_client: list[list[float]] = [[] for _ in callers]
    lock = threading.Lock()
    start_line = threading.Barrier(plan.clients + 1)
    ends: list[float] = []
    stop_at = 0.0  # set below, before the clients pass the start line

    def client(number: int) -> None:
        call, latencies = callers[number], per_client[number]
        start_line.wait()
        while True:
            ticket = next(tickets)
            started = time.perf_counter()
            if ticket >= max_requests or started >= stop_at:
                break
            try:
                call(ticket)
            except (RequestFailed, OSError) as error:
                with lock:
                    result.errors += 1
                    result.first_error = result.first_error or str(error)[:300]
                continue
            latencies.append((time.perf_counter() - started) * 1000)
        with lock:
            ends.append(time.perf_counter())

    threads = [threading.Thread(target=client, args=(number,), daemon=True) for number in range(plan.clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    stop_at = started + max_seconds
    start_line.wait()
    for thread in threads:
        thread.join(timeout=max(0.0, stop_at - time.perf_counter()) + JOIN_GRACE_SECONDS)
    for caller in callers:
        caller.close()
    hung = sum(thread.is_alive() for thread in threads)
    if hung:
        result.errors += hung
        result.first_error = result.first_error or f"{hung} client(s) still waiting for an answer"
    result.elapsed_s = (max(ends) if ends else time.perf_counter()) - started
    result.latencies_ms = [latency for latencies in per_client for latency in latencies]
    return result
