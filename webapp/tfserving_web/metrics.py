"""Prometheus metrics of the web front end, served at GET /metrics on the web port.

Under gunicorn every worker is a process of its own: prometheus_client's multiprocess mode keeps each
worker's values in memory-mapped files in PROMETHEUS_MULTIPROC_DIR, and /metrics (answered by any
worker) adds up the files of all of them, including workers that have exited, so counters survive a
worker restart. `tfserving_web.gunicorn_conf` sets the folder (the systemd unit names its runtime
directory), empties it when gunicorn starts and marks exited workers dead. Without the variable (the
Flask test client, `flask run`) the values live in this process.

prometheus_client decides between the two modes when it is first imported, so it is imported here
only on first use, in the worker, after gunicorn's config has set the variable; importing this
package (which gunicorn's config module does in the master) loads no prometheus_client.

The names are a contract with the alert rules; do not rename them:
  tfweb_requests_total{endpoint,method,status}                  counter
  tfweb_request_duration_seconds{endpoint}                      histogram
  tfweb_model_server_call_duration_seconds{transport,outcome}   histogram, outcome ok | error
  tfweb_upload_rejections_total{reason}                         counter
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# endpoint label of requests no route matched (404, 405): never the path, which clients choose.
UNMATCHED = "unmatched"
# A prediction takes a few milliseconds; the slowest answers wait on TF Serving up to READ_TIMEOUT.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Why an upload was refused (tfweb_upload_rejections_total{reason}).
REASON_EMPTY = "empty"
REASON_FORMAT = "format"
REASON_TOO_MANY_PIXELS = "too_many_pixels"
REASON_DAMAGED = "damaged"
REASON_BAD_REQUEST = "bad_request"
REASON_TOO_LARGE = "too_large"
REASON_UNKNOWN_MODEL = "unknown_model"
REASON_MODEL_SERVER_REJECTED = "model_server_rejected"
REASON_RATE_LIMITED = "rate_limited"
REASON_CROSS_SITE = "cross_site"


class WebMetrics:
    """The four metrics of this process (one set per process, see `web_metrics`)."""

    def __init__(self) -> None:
        import prometheus_client

        prometheus_client.disable_created_metrics()  # no *_created series: nothing here reads them
        self.requests = prometheus_client.Counter(
            "tfweb_requests_total",
            "HTTP requests answered, by Flask endpoint, method and status code.",
            ["endpoint", "method", "status"],
        )
        self.request_duration = prometheus_client.Histogram(
            "tfweb_request_duration_seconds",
            "Time from the request's start in Flask to its answer, by Flask endpoint.",
            ["endpoint"],
            buckets=DURATION_BUCKETS,
        )
        self.model_server_calls = prometheus_client.Histogram(
            "tfweb_model_server_call_duration_seconds",
            "Calls to TF Serving (status, metadata, predict), by transport and outcome.",
            ["transport", "outcome"],
            buckets=DURATION_BUCKETS,
        )
        self.upload_rejections = prometheus_client.Counter(
            "tfweb_upload_rejections_total",
            "Uploads refused before or by the model, by reason.",
            ["reason"],
        )

    def exposition(self) -> bytes:
        """The text every worker answers /metrics with: all workers' values in multiprocess mode."""
        import prometheus_client
        from prometheus_client import multiprocess

        if os.environ.get(MULTIPROC_DIR_VARIABLE):
            registry = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return prometheus_client.generate_latest(registry)
        return prometheus_client.generate_latest()


_lock = threading.Lock()
_metrics: WebMetrics | None = None


def web_metrics() -> WebMetrics:
    """This process's metrics, made on first use (module-level metrics would import prometheus_client,
    and fix its mode, wherever this package is imported)."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = WebMetrics()
    return _metrics


# The children of the label values seen so far: `labels()` takes a lock and checks its arguments on
# every call, and every request brings the same few values (the metrics are one set per process).
@functools.cache
def _request_series(endpoint: str, method: str, status: int) -> tuple[Any, Any]:
    metrics = web_metrics()
    return metrics.requests.labels(endpoint, method, str(status)), metrics.request_duration.labels(endpoint)


@functools.cache
def _call_series(transport: str, ok: bool) -> Any:
    return web_metrics().model_server_calls.labels(transport, "ok" if ok else "error")


def count_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    requests, duration = _request_series(endpoint or UNMATCHED, method, status)
    requests.inc()
    duration.observe(seconds)


def observe_model_server_call(transport: str, seconds: float, ok: bool) -> None:
    _call_series(transport, ok).observe(seconds)


def count_rejection(reason: str) -> None:
    web_metrics().upload_rejections.labels(reason).inc()


def prepare_multiprocess_dir(path: str) -> None:
    """Create the folder and remove what earlier runs left in it (their counts are not ours)."""
    os.makedirs(path, mode=0o750, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


def mark_worker_dead(pid: int) -> None:
    """gunicorn's child_exit: drop the exited worker's live gauges (its counters stay counted)."""
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
