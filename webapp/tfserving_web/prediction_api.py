"""The JSON API for programs, POST /api/predict: a WSGI application in front of Flask's.

Not a Flask view, by measurement: Flask's machinery per request (application and request contexts,
the session, URL matching, before and after hooks, jsonify and its Response) was about 40% of the
front end's own Python per prediction (tfstack-bench-app, side by side: 0.62 -> 0.39 ms), and the API
uses none of it: one route, no session, no templates. It reads the request with werkzeug's Request
(the class Flask's is built on) and shares with the page everything an answer depends on:
`classify`, the error mapping (`errors.failure_answer`), the rate limit, the metrics and the security
headers. Every path outside /api/ goes on to Flask."""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from tfserving_web import metrics
from tfserving_web.classify import classify
from tfserving_web.errors import failure_answer
from tfserving_web.security import SECURITY_HEADERS, rate_limit_wait
from tfserving_web.uploads.form import form_fields, is_multipart, text_field
from tfserving_web.uploads.images import BadImage

PREFIX = "/api/"
PREDICT_PATH = "/api/predict"
# The metrics' endpoint label, as when this was the Flask view `api.predict` (the alert rules use it).
ENDPOINT = "api.predict"
METHODS = ("POST", "OPTIONS")
ALLOW = (("Allow", ", ".join(METHODS)),)
# Every answer's: JSON, and the page's security headers, which a browser calling the API gets too.
ANSWER_HEADERS = (("Content-Type", "application/json"), *SECURITY_HEADERS.items())

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class TooManyRequests(Exception):
    def __init__(self, wait_seconds: float, limit: int) -> None:
        super().__init__(f"too many requests: at most {limit} a minute; try again later")
        self.retry_after = str(max(1, math.ceil(wait_seconds)))


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] | None  # None: no body (OPTIONS)
    headers: tuple[tuple[str, str], ...] = ()


class PredictionApi:
    """Answers every path under /api/ (404 and 405 in JSON too); hands the others to `other`."""

    def __init__(self, app: Flask, other: WsgiApp) -> None:
        self.app = app
        self.other = other

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self.other(environ, start_response)
        started = time.perf_counter()
        request = Request(environ)
        request.max_content_length = self.app.config["MAX_CONTENT_LENGTH"]
        try:
            answer = self.answer(request)
        finally:
            request.close()
        matched = path == PREDICT_PATH and request.method in METHODS
        metrics.count_request(
            ENDPOINT if matched else None, request.method, answer.status, time.perf_counter() - started
        )
        return respond(answer, start_response)

    def answer(self, request: Request) -> Answer:
        try:
            if request.path != PREDICT_PATH:
                raise NotFound()
            if request.method == "OPTIONS":
                return Answer(200, None, ALLOW)
            if request.method != "POST":
                raise MethodNotAllowed(valid_methods=list(METHODS))
            return Answer(200, self.predict(request))
        except TooManyRequests as error:
            metrics.count_rejection(metrics.REASON_RATE_LIMITED)
            return Answer(429, {"error": str(error)}, (("Retry-After", error.retry_after),))
        except Exception as error:  # every failure becomes a JSON answer; bugs are logged
            status, message = failure_answer(
                error, request.method, request.path, self.app.config["MAX_CONTENT_LENGTH"]
            )
            return Answer(status, {"error": message}, ALLOW if isinstance(error, MethodNotAllowed) else ())

    def predict(self, request: Request) -> dict[str, Any]:
        """Classify one image.

        Body: multipart/form-data with field `image` (and optional `model`), or JSON
        `{"image_b64": "...", "model": "..."}`. Answers
        `{"model", "version", "class_id", "probabilities", "latency_ms"}`; errors are `{"error": "..."}`
        with 400 (bad image or input), 413 (too large), 503 (model server or model unavailable),
        504 (model server too slow), 502 (any other model server failure) or 429 (too many requests
        from this client; Retry-After says when to try again). Stateless: no cookie is read or set.
        """
        app = self.app
        expiry = app.extensions["upload_expiry"]
        if expiry is not None:
            expiry()
        wait = rate_limit_wait(app, request)
        if wait > 0:
            raise TooManyRequests(wait, app.config["RATE_LIMIT"])
        data, model = upload_from_request(request, app.config["MAX_CONTENT_LENGTH"])
        result = classify(app, data, model).prediction
        return {
            "model": result.model,
            "version": result.version,
            "class_id": result.class_id,
            "probabilities": result.probabilities,
            "latency_ms": result.latency_ms,
        }


def upload_from_request(request: Request, max_bytes: int) -> tuple[bytes, str | None]:
    """(image bytes, requested model or None) from a multipart or a JSON body."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("image_b64"), str):
            raise BadImage('JSON body must be an object with "image_b64": "<base64 of the image file>"')
        try:
            data = base64.b64decode(body["image_b64"], validate=True)
        except (binascii.Error, ValueError):
            raise BadImage('"image_b64" is not valid base64') from None
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise BadImage('"model" must be a string')
        return data, model or None
    fields = form_fields(request, max_bytes) if is_multipart(request) else {}
    if "image" not in fields:
        raise BadImage('send the image as multipart field "image" or as JSON {"image_b64": ...}')
    return fields["image"], text_field(fields, "model")


def respond(answer: Answer, start_response: Callable[..., Any]) -> list[bytes]:
    """Written with WSGI's start_response, not werkzeug's Response: that builds a Headers structure and
    walks it twice per answer, a quarter of this module's own time per prediction (cProfile); a JSON
    body and a fixed list of headers need none of it."""
    data = b"" if answer.body is None else json.dumps(answer.body).encode()
    headers = [*ANSWER_HEADERS, *answer.headers, ("Content-Length", str(len(data)))]
    start_response(f"{answer.status} {HTTP_STATUS_CODES.get(answer.status, '')}", headers)
    return [data]
