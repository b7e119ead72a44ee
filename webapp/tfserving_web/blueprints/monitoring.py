"""GET /metrics for Prometheus, and the hooks that count and time every request (see `metrics`)."""

from __future__ import annotations

import time

from flask import Blueprint, Response, g, request

from tfserving_web import metrics

bp = Blueprint("monitoring", __name__)


@bp.before_app_request
def start_timer() -> None:
    g.tfweb_started = time.perf_counter()


@bp.after_app_request
def count_request(response: Response) -> Response:
    """Every answer, errors included (Flask runs this after the error handlers)."""
    started = g.get("tfweb_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    metrics.count_request(request.endpoint, request.method, response.status_code, seconds)
    return response


@bp.get("/metrics")
def metrics_text() -> Response:
    """All workers' metrics in Prometheus' text format."""
    return Response(metrics.web_metrics().exposition(), content_type=metrics.CONTENT_TYPE)
