"""The real server's Prometheus metrics that the bundle reads, rendered by prometheus-client.

TF Serving's exporter (util/prometheus_exporter.cc) turns `/tensorflow/serving/request_count` into
`:tensorflow:serving:request_count`, prints a counter as-is (no `_total`) and a TensorFlow Sampler as a
histogram whose `le` bounds are the bucket limits printed with six significant digits. Kept here: the
families of servables/tensorflow/util.cc, saved_model_warmup_util.cc and TensorFlow's
cc/saved_model/loader.cc that request rates, latencies and load failures are read from; the rest of the
real set (graph runs, batching, example counts...) is not.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


def _exponential_buckets(scale: float, growth_factor: float, count: int) -> tuple[float, ...]:
    """monitoring::Buckets::Exponential: scale, scale*growth, ... (count limits; +Inf follows)."""
    limits = []
    bound = scale
    for _ in range(count):
        limits.append(bound)
        bound *= growth_factor
    return tuple(limits)


# "Scale of 10, power of 1.8 with bucket count 33 (~20 minutes)", in microseconds.
LATENCY_BUCKETS_US = _exponential_buckets(10, 1.8, 33)


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    documentation: str
    kind: str  # "counter" or "histogram"
    labels: tuple[str, ...]


REQUEST_COUNT = Family(
    ":tensorflow:serving:request_count", "The total number of requests.", "counter", ("model_name", "status")
)
REQUEST_LATENCY = Family(
    ":tensorflow:serving:request_latency",
    "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
    "histogram",
    ("model_name", "API", "entrypoint"),
)
RUNTIME_LATENCY = Family(
    ":tensorflow:serving:runtime_latency",
    "Distribution of wall time (in microseconds) for Tensorflow runtime.",
    "histogram",
    ("model_name", "API", "runtime"),
)
WARMUP_LATENCY = Family(
    ":tensorflow:serving:model_warmup_latency",
    "Distribution of wall time (in microseconds) for warming up the model.",
    "histogram",
    ("model_path", "status"),
)
LOAD_ATTEMPT_COUNT = Family(
    ":tensorflow:cc:saved_model:load_attempt_count",
    "The number of times a SavedModel was successfully loaded.",  # sic: failures are counted too
    "counter",
    ("model_path", "status"),
)
LOAD_LATENCY = Family(
    ":tensorflow:cc:saved_model:load_latency",
    "Latency in microseconds for SavedModels that were successfully loaded.",
    "counter",
    ("model_path",),
)
FAMILIES = (REQUEST_COUNT, REQUEST_LATENCY, RUNTIME_LATENCY, WARMUP_LATENCY, LOAD_ATTEMPT_COUNT, LOAD_LATENCY)


class ServingMetrics(Collector):
    """Thread-safe counters and histograms, collected on each scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[Family, dict[tuple[str, ...], float]] = defaultdict(lambda: defaultdict(float))
        # Per label set: one count per bucket (the last for +Inf, not cumulative), then the sum.
        self._histograms: dict[Family, dict[tuple[str, ...], list[float]]] = defaultdict(dict)

    def increment(self, family: Family, labels: tuple[str, ...], amount: float = 1) -> None:
        assert family.kind == "counter" and len(labels) == len(family.labels)
        with self._lock:
            self._counters[family][labels] += amount

    def observe(self, family: Family, labels: tuple[str, ...], micros: float) -> None:
        """Adds one sample; like TensorFlow's Histogram, a value equal to a limit counts above it."""
        assert family.kind == "histogram" and len(labels) == len(family.labels)
        with self._lock:
            counts = self._histograms[family].setdefault(labels, [0.0] * (len(LATENCY_BUCKETS_US) + 2))
            counts[bisect.bisect_right(LATENCY_BUCKETS_US, micros)] += 1
            counts[-1] += micros

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counters = {family: dict(cells) for family, cells in self._counters.items()}
            histograms = {
                family: {labels: list(counts) for labels, counts in cells.items()}
                for family, cells in self._histograms.items()
            }
        for family in FAMILIES:
            metric = Metric(family.name, family.documentation, family.kind)
            if family.kind == "counter":
                for labels, value in sorted(counters.get(family, {}).items()):
                    metric.add_sample(family.name, dict(zip(family.labels, labels, strict=True)), value)
            else:
                for labels, counts in sorted(histograms.get(family, {}).items()):
                    _add_histogram(metric, dict(zip(family.labels, labels, strict=True)), counts)
            yield metric


def _add_histogram(metric: Metric, labels: dict[str, str], counts: list[float]) -> None:
    cumulative = 0.0
    bounds = [format(bound, ".6g") for bound in LATENCY_BUCKETS_US] + ["+Inf"]
    for bound, count in zip(bounds, counts, strict=False):
        cumulative += count
        metric.add_sample(f"{metric.name}_bucket", {**labels, "le": bound}, cumulative)
    metric.add_sample(f"{metric.name}_sum", labels, counts[-1])
    metric.add_sample(f"{metric.name}_count", labels, cumulative)


METRICS = ServingMetrics()
_REGISTRY = CollectorRegistry(auto_describe=False)
_REGISTRY.register(METRICS)


def record_request(model_name: str, status: str, api: str, entrypoint: str, micros: float) -> None:
    """One answered request, as http_server.cc and prediction_service_impl.cc record it: counted with
    its status code's name ("OK", "NOT_FOUND", ...), timed only when it succeeded."""
    METRICS.increment(REQUEST_COUNT, (model_name, status))
    if status == "OK":
        METRICS.observe(REQUEST_LATENCY, (model_name, api, entrypoint), micros)


def record_load(model_path: str, succeeded: bool, micros: float) -> None:
    """One LoadSavedModel attempt of a version directory (loader.cc): "success" or "fail", and its time."""
    METRICS.increment(LOAD_ATTEMPT_COUNT, (model_path, "success" if succeeded else "fail"))
    METRICS.increment(LOAD_LATENCY, (model_path,), int(micros))


def prometheus_page() -> bytes:
    """The text format (0.0.4). prometheus-client writes a counter's HELP and TYPE lines for
    `<name>_total`, its own naming rule; TF Serving's counters have no suffix, so those two lines are
    given the samples' name back, or a scraper would not know the samples are counters."""
    page = generate_latest(_REGISTRY)
    for family in FAMILIES:
        if family.kind == "counter":
            page = page.replace(f" {family.name}_total ".encode(), f" {family.name} ".encode())
    return page
