"""Counters the real server exports, rendered in Prometheus text format by prometheus-client.

Names follow TF Serving's Prometheus exporter, which turns `/tensorflow/serving/request_count` into
`:tensorflow:serving:request_count`. Only a handful of the real metrics are kept: enough for a scrape
config, a dashboard query or a test to find familiar names, not a copy of the whole set.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS_US = (
    10,
    18,
    32.4,
    58.3,
    105,
    189,
    340,
    612,
    1.1e3,
    1.98e3,
    3.57e3,
    6.43e3,
    1.16e4,
    2.08e4,
    3.75e4,
    6.75e4,
    1.21e5,
    2.19e5,
    3.94e5,
    7.09e5,
    1.28e6,
    2.3e6,
    4.13e6,
    7.44e6,
    1.34e7,
    2.41e7,
    4.34e7,
    7.81e7,
    1.41e8,
    2.53e8,
    4.56e8,
    8.2e8,
    1.48e9,
)


class ServingMetrics(Collector):
    """Thread-safe counters, collected on each scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        self._loads: dict[tuple[str, str], int] = defaultdict(int)
        # Per label set: one count per bucket (not cumulative), then the sum of observations.
        self._latency: dict[tuple[str, str, str], list[float]] = {}

    def count_request(self, model_name: str, status: str) -> None:
        with self._lock:
            self._requests[(model_name, status)] += 1

    def count_load(self, model_path: str, status: str) -> None:
        with self._lock:
            self._loads[(model_path, status)] += 1

    def observe_latency(self, model_name: str, api: str, entrypoint: str, micros: float) -> None:
        with self._lock:
            counts = self._latency.setdefault(
                (model_name, api, entrypoint), [0.0] * (len(_LATENCY_BUCKETS_US) + 2)
            )
            bucket = next(
                (i for i, bound in enumerate(_LATENCY_BUCKETS_US) if micros <= bound),
                len(_LATENCY_BUCKETS_US),
            )
            counts[bucket] += 1
            counts[-1] += micros

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            requests = dict(self._requests)
            loads = dict(self._loads)
            latency = {key: list(values) for key, values in self._latency.items()}
        request_count = Metric(
            ":tensorflow:serving:request_count", "The total number of requests.", "counter"
        )
        for (model_name, status), value in sorted(requests.items()):
            request_count.add_sample(
                ":tensorflow:serving:request_count", {"model_name": model_name, "status": status}, value
            )
        yield request_count
        load_count = Metric(
            ":tensorflow:cc:saved_model:load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            "counter",
        )
        for (model_path, status), value in sorted(loads.items()):
            load_count.add_sample(
                ":tensorflow:cc:saved_model:load_attempt_count",
                {"model_path": model_path, "status": status},
                value,
            )
        yield load_count
        name = ":tensorflow:serving:request_latency"
        histogram = Metric(
            name, "Distribution of wall time (in microseconds) for Tensorflow Serving request.", "histogram"
        )
        for (model_name, api, entrypoint), counts in sorted(latency.items()):
            labels = {"model_name": model_name, "API": api, "entrypoint": entrypoint}
            cumulative = 0.0
            for bound, count in zip(_LATENCY_BUCKETS_US, counts, strict=False):
                cumulative += count
                histogram.add_sample(f"{name}_bucket", {**labels, "le": str(bound)}, cumulative)
            total = cumulative + counts[len(_LATENCY_BUCKETS_US)]
            histogram.add_sample(f"{name}_bucket", {**labels, "le": "+Inf"}, total)
            histogram.add_sample(f"{name}_sum", labels, counts[-1])
            histogram.add_sample(f"{name}_count", labels, total)
        yield histogram


METRICS = ServingMetrics()
_REGISTRY = CollectorRegistry(auto_describe=False)
_REGISTRY.register(METRICS)


def prometheus_page() -> bytes:
    return generate_latest(_REGISTRY)
