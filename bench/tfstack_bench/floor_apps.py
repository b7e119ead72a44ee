"""Web apps that do no work of the front end's, served by gunicorn as the front end is
(`stack.start_floor`): what the HTTP hop into gunicorn costs, and what the hop and the one gRPC call
every prediction needs cost together when nothing else is done.

Each reads the whole request body (the upload crosses the hop) and answers a fixed prediction-shaped
JSON, so the web front end's client (`paths.web_front_end`, which wants "class_id") accepts it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tfserving_web.per_process import PerProcess
from tfstack_bench.paths import predict_channel

ANSWER = b'{"class_id": 0, "probabilities": [1.0]}'
_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))]
# What grpc_relay_app calls: TF Serving's gRPC target, and a file holding one serialized PredictRequest
# (paths.predict_requests), both set by the bench in gunicorn's environment.
RELAY_TARGET_VARIABLE = "TFSTACK_RELAY_GRPC_TARGET"
RELAY_REQUEST_VARIABLE = "TFSTACK_RELAY_REQUEST_FILE"
RELAY_TIMEOUT_SECONDS = 30.0


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Any method, any path: read the body, answer 200 with ANSWER."""
    environ["wsgi.input"].read()
    start_response("200 OK", _HEADERS)
    return [ANSWER]


def _relay_call() -> Callable[[], object]:
    """The prepared Predict on a channel of this worker's (made after gunicorn's fork), sent and its
    answer parsed as the bench's direct gRPC path does."""
    _, predict = predict_channel(os.environ[RELAY_TARGET_VARIABLE])
    request = Path(os.environ[RELAY_REQUEST_VARIABLE]).read_bytes()
    return lambda: predict(request, timeout=RELAY_TIMEOUT_SECONDS)


_relay = PerProcess(_relay_call)


def grpc_relay_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Any method, any path: read the body, send the prepared Predict to TF Serving, answer ANSWER.
    The floor of any front end over gRPC: nothing of the upload is read, checked or stored."""
    environ["wsgi.input"].read()
    _relay()()
    start_response("200 OK", _HEADERS)
    return [ANSWER]
