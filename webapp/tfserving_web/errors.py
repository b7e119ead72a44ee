"""Turns every failure into a short answer with the right status: JSON for the API and health
endpoints, the page with a message for the browser. Never a traceback, never Flask's HTML 500.

The app registers the handler with JSON answers; the pages blueprint registers it again with its
own answer (the page), which Flask prefers for requests to that blueprint's views. The JSON API
(`prediction_api`, not a Flask view) answers through `failure_answer` too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from tfserving_web import metrics
from tfserving_web.model_server import InputRejected, ModelServerError
from tfserving_web.model_server.catalog import UnknownModel
from tfserving_web.uploads.images import BadImage

log = logging.getLogger(__name__)

# answer(HTTP status, message for the user) -> the response
ErrorAnswer = Callable[[int, str], ResponseReturnValue]


def json_answer(status: int, message: str) -> ResponseReturnValue:
    return jsonify(error=message), status


def failure_answer(error: Exception, method: str, path: str, max_content_length: int) -> tuple[int, str]:
    """(HTTP status, message for the user) of any failure; counts refused uploads and logs what the
    operator needs. The one mapping of the page's, the app's and the JSON API's answers."""
    if isinstance(error, BadImage | UnknownModel):
        metrics.count_rejection(error.reason if isinstance(error, BadImage) else metrics.REASON_UNKNOWN_MODEL)
        return error.status_code, str(error)
    if isinstance(error, ModelServerError):
        log.warning("%s %s -> %d: %s", method, path, error.status_code, error.message)
        if isinstance(error, InputRejected):
            metrics.count_rejection(metrics.REASON_MODEL_SERVER_REJECTED)
        return error.status_code, error.message
    if isinstance(error, RequestEntityTooLarge):
        metrics.count_rejection(metrics.REASON_TOO_LARGE)
        return 413, f"upload is larger than the limit of {max_content_length} bytes"
    if isinstance(error, HTTPException):
        return error.code or 500, error.description or error.name
    # A bug: log it with its traceback for the operator, answer without one.
    log.error("unexpected error on %s %s", method, path, exc_info=error)
    return 500, "internal error; the details are in the server log"


def register_error_handlers(scope: Flask | Blueprint, answer: ErrorAnswer = json_answer) -> None:
    """One handler for every failure in `scope` (the app, or a blueprint answering in its own way);
    Flask hands it HTTP errors (404, 405, 413) too, having no more specific handler."""

    @scope.errorhandler(Exception)
    def failed(error: Exception) -> ResponseReturnValue:
        status, message = failure_answer(
            error, request.method, request.path, current_app.config["MAX_CONTENT_LENGTH"]
        )
        return answer(status, message)
