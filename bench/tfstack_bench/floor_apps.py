"""Two web apps that do no work, served by gunicorn as the front end is (`stack.start_floor`): what
the HTTP hop into gunicorn costs, and what a Flask route adds to it, before any model call.

Both read the whole request body (the upload crosses the hop) and answer a fixed prediction-shaped
JSON, so the web front end's client (`paths.web_front_end`, which wants "class_id") accepts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request

ANSWER = b'{"class_id": 0, "probabilities": [1.0]}'
_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))]


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Any method, any path: read the body, answer 200 with ANSWER."""
    environ["wsgi.input"].read()
    start_response("200 OK", _HEADERS)
    return [ANSWER]


flask_app = Flask(__name__)


@flask_app.post("/api/predict")
def predict() -> Any:
    """The front end's route, reduced to reading the upload (not parsing it) and answering."""
    request.get_data()
    return flask_app.response_class(ANSWER, mimetype="application/json")
