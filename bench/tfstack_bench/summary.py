"""From raw latencies to what the report says: percentiles and throughput per path and concurrency,
pooled over the rounds; the ratios of the issue's "done when"; how much CPU the hypervisor took
meanwhile; the cold start medians."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

from tfstack_bench.coldstart import Trial
from tfstack_bench.load import CellResult

# The targets: the web front end against a direct REST call to TF Serving.
P50_RATIO_LIMIT = 1.6  # web p50 <= 1.6 x REST p50, one client
THROUGHPUT_RATIO_FLOOR = 0.5  # web throughput >= 0.5 x REST, 8 clients
P50_LEVEL = 1
THROUGHPUT_LEVEL = 8


def percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted values."""
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class PathLevel:
    path: str
    clients: int
    requests: int
    errors: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    throughput: float  # completed requests per second, over all rounds' time
    throughput_per_round: list[float]
    # The whole machine's context switches over the rounds' bursts per completed request (the load
    # generator's and the servers' hand-offs alike); None where a burst has no count.
    switches_per_request: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def switches_per_request(group: list[CellResult]) -> float | None:
    switches = 0
    for cell in group:
        if cell.context_switches is None:
            return None
        switches += cell.context_switches
    requests = sum(cell.completed for cell in group)
    return switches / requests if requests else None


def summarize(cells: list[CellResult]) -> list[PathLevel]:
    groups: dict[tuple[str, int], list[CellResult]] = {}
    for cell in cells:
        groups.setdefault((cell.path, cell.clients), []).append(cell)
    rows = []
    for (path, clients), group in groups.items():
        ordered = sorted(latency for cell in group for latency in cell.latencies_ms)
        elapsed = sum(cell.elapsed_s for cell in group)
        rows.append(
            PathLevel(
                path=path,
                clients=clients,
                requests=len(ordered),
                errors=sum(cell.errors for cell in group),
                p50_ms=percentile(ordered, 50),
                p90_ms=percentile(ordered, 90),
                p95_ms=percentile(ordered, 95),
                p99_ms=percentile(ordered, 99),
                max_ms=ordered[-1] if ordered else math.nan,
                mean_ms=statistics.fmean(ordered) if ordered else math.nan,
                throughput=len(ordered) / elapsed if elapsed > 0 else 0.0,
                throughput_per_round=[cell.throughput for cell in sorted(group, key=lambda c: c.round)],
                switches_per_request=switches_per_request(group),
            )
        )
    return sorted(rows, key=lambda row: (row.path, row.clients))


def lookup(rows: list[PathLevel], path: str, clients: int) -> PathLevel | None:
    return next((row for row in rows if row.path == path and row.clients == clients), None)


@dataclass(frozen=True)
class Verdict:
    """The issue's two conditions for one web path against direct REST."""

    web_path: str
    p50_ratio: float | None
    throughput_ratio: float | None
    p50_ratio_by_round: tuple[float, ...] = ()

    @property
    def p50_ok(self) -> bool:
        return self.p50_ratio is not None and self.p50_ratio <= P50_RATIO_LIMIT

    @property
    def throughput_ok(self) -> bool:
        return self.throughput_ratio is not None and self.throughput_ratio >= THROUGHPUT_RATIO_FLOOR

    def as_dict(self) -> dict:
        return {**asdict(self), "p50_ok": self.p50_ok, "throughput_ok": self.throughput_ok}


def verdict(
    rows: list[PathLevel], cells: list[CellResult], web_path: str, rest_path: str = "rest"
) -> Verdict:
    web_one, rest_one = lookup(rows, web_path, P50_LEVEL), lookup(rows, rest_path, P50_LEVEL)
    web_many, rest_many = lookup(rows, web_path, THROUGHPUT_LEVEL), lookup(rows, rest_path, THROUGHPUT_LEVEL)
    p50_ratio = web_one.p50_ms / rest_one.p50_ms if web_one and rest_one and rest_one.p50_ms > 0 else None
    throughput_ratio = (
        web_many.throughput / rest_many.throughput
        if web_many and rest_many and rest_many.throughput
        else None
    )
    return Verdict(web_path, p50_ratio, throughput_ratio, p50_ratios_by_round(cells, web_path, rest_path))


def p50_ratios_by_round(cells: list[CellResult], web_path: str, rest_path: str = "rest") -> tuple[float, ...]:
    """The p50 ratio within each round, from the two paths' bursts with P50_LEVEL clients: bursts of
    one round ran seconds apart, so the spread of these is what the machine's noise does to the
    pooled ratio."""
    p50s: dict[int, dict[str, float]] = {}
    for cell in cells:
        if cell.clients == P50_LEVEL and cell.path in (web_path, rest_path) and cell.latencies_ms:
            p50s.setdefault(cell.round, {})[cell.path] = percentile(sorted(cell.latencies_ms), 50)
    return tuple(
        round(paths[web_path] / paths[rest_path], 2)
        for _, paths in sorted(p50s.items())
        if web_path in paths and paths.get(rest_path, 0) > 0
    )


# The floor paths: gunicorn shaped like the deployment's, serving apps that do none of the front end's
# work (floor_apps): the hop alone, and the hop with the gRPC call relayed.
GUNICORN_FLOOR = "gunicorn-floor"
RELAY_FLOOR = "grpc-relay-floor"


@dataclass(frozen=True)
class FloorBreakdown:
    """The web front end's p50 beside the floors under it, at one client, all from the same interleaved
    run. hop + call is an estimate (a sum of medians of separate paths); the relay is measured."""

    web_path: str
    call_path: str  # the direct model call the front end makes: "grpc" (or "rest")
    clients: int
    rest_ms: float
    call_ms: float
    gunicorn_floor_ms: float
    relay_floor_ms: float | None  # None: not measured, or the front end does not call over gRPC
    web_ms: float
    # The whole machine's context switches per request of each path above, by path name (None: no count).
    switches: dict[str, float | None] = field(default_factory=dict)

    @property
    def hop_and_call_ms(self) -> float:
        """An empty WSGI app under gunicorn, then the model call."""
        return self.gunicorn_floor_ms + self.call_ms

    @property
    def app_own_ms(self) -> float:
        """What the front end's own work adds to the hop and the model call (may be < 0 in noise):
        against the relay when it was measured, else against hop + call."""
        floor = self.relay_floor_ms if self.relay_floor_ms is not None else self.hop_and_call_ms
        return self.web_ms - floor

    @property
    def app_own_basis(self) -> str:
        if self.relay_floor_ms is not None:
            return f"{self.web_path} - {RELAY_FLOOR}"
        return f"{self.web_path} - {GUNICORN_FLOOR} - {self.call_path}, an estimate"

    def over_rest(self, ms: float) -> float:
        return ms / self.rest_ms

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "hop_and_call_ms": self.hop_and_call_ms,
            "hop_and_call_over_rest": self.over_rest(self.hop_and_call_ms),
            "relay_floor_over_rest": None
            if self.relay_floor_ms is None
            else self.over_rest(self.relay_floor_ms),
            "app_own_ms": self.app_own_ms,
            "app_own_basis": self.app_own_basis,
            "call_over_rest": self.over_rest(self.call_ms),
            "web_over_rest": self.over_rest(self.web_ms),
        }


def floor_breakdown(
    rows: list[PathLevel], web_path: str, call_path: str = "grpc", rest_path: str = "rest"
) -> FloorBreakdown | None:
    """The breakdown at P50_LEVEL clients; None when a path it needs has no answered request there. The
    relay floor is used when it was measured and the front end calls TF Serving over gRPC."""
    needed = (rest_path, call_path, GUNICORN_FLOOR, web_path)
    rest, call, gunicorn_floor, web = (_p50(rows, path) for path in needed)
    if rest is None or call is None or gunicorn_floor is None or web is None or rest <= 0:
        return None
    relay = _p50(rows, RELAY_FLOOR) if call_path == "grpc" else None
    switches = {
        path: row.switches_per_request
        for path in (*needed, RELAY_FLOOR)
        if (row := lookup(rows, path, P50_LEVEL)) is not None
    }
    return FloorBreakdown(web_path, call_path, P50_LEVEL, rest, call, gunicorn_floor, relay, web, switches)


def _p50(rows: list[PathLevel], path: str) -> float | None:
    row = lookup(rows, path, P50_LEVEL)
    return row.p50_ms if row is not None and row.requests > 0 else None


def steal_summary(cells: list[CellResult]) -> dict[str, float] | None:
    """The hypervisor's share of the CPU time over the measured bursts: their mean, weighted by
    length, and the lowest and highest burst. None where the machine does not report steal."""
    measured = [
        (cell.steal_percent, cell.elapsed_s)
        for cell in cells
        if cell.steal_percent is not None and cell.elapsed_s > 0
    ]
    if not measured:
        return None
    shares = [share for share, _ in measured]
    seconds = sum(elapsed for _, elapsed in measured)
    return {
        "mean": round(sum(share * elapsed for share, elapsed in measured) / seconds, 1),
        "lowest_burst": min(shares),
        "highest_burst": max(shares),
    }


@dataclass(frozen=True)
class ColdStart:
    kind: str
    trials: int
    rollout_s: float  # medians over the trials
    first_ms: float
    warm_ms: float

    @property
    def first_over_warm(self) -> float:
        return self.first_ms / self.warm_ms if self.warm_ms > 0 else math.nan

    def as_dict(self) -> dict:
        return {**asdict(self), "first_over_warm": self.first_over_warm}


def coldstart_summary(trials: list[Trial]) -> list[ColdStart]:
    kinds = dict.fromkeys(trial.kind for trial in trials)
    summary = []
    for kind in kinds:
        of_kind = [trial for trial in trials if trial.kind == kind]
        summary.append(
            ColdStart(
                kind=kind,
                trials=len(of_kind),
                rollout_s=statistics.median(trial.rollout_s for trial in of_kind),
                first_ms=statistics.median(trial.first_ms for trial in of_kind),
                warm_ms=statistics.median(trial.warm_p50_ms for trial in of_kind),
            )
        )
    return summary


def ratio_text(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}"
