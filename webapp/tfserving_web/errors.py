"""Turns every failure into a short answer with the right status: JSON for the API and health
endpoints, the page with a message for the browser. Never a traceback, never Flask's HTML 500.

The app registers the handlers with JSON answers; the pages blueprint registers them again with its
own answer (the page), which Flask prefers for requests to that blueprint's views.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from tfserving_web import metrics
from tfserving_web.image_upload import BadImage
from tfserving_web.model_catalog import UnknownModel
from tfserving_web.model_server import InputRejected, ModelServerError

log = logging.getLogger(__name__)

# answer(HTTP status, message for the user) -> the response
ErrorAnswer = Callable[[int, str], ResponseReturnValue]


def json_answer(status: int, message: str) -> ResponseReturnValue:
    return jsonify(error=message), status


def register_error_handlers(scope: Flask | Blueprint, answer: ErrorAnswer = json_answer) -> None:
    """Handlers for every failure in `scope` (the app, or a blueprint answering in its own way)."""

    @scope.errorhandler(BadImage)
    @scope.errorhandler(UnknownModel)
    def bad_input(error: BadImage | UnknownModel) -> ResponseReturnValue:
        metrics.count_rejection(error.reason if isinstance(error, BadImage) else metrics.REASON_UNKNOWN_MODEL)
        return answer(error.status_code, str(error))

    @scope.errorhandler(ModelServerError)
    def model_server_failed(error: ModelServerError) -> ResponseReturnValue:
        log.warning("%s %s -> %d: %s", request.method, request.path, error.status_code, error.message)
        if isinstance(error, InputRejected):
            metrics.count_rejection(metrics.REASON_MODEL_SERVER_REJECTED)
        return answer(error.status_code, error.message)

    @scope.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> ResponseReturnValue:
        metrics.count_rejection(metrics.REASON_TOO_LARGE)
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return answer(413, f"upload is larger than the limit of {limit} bytes")

    @scope.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        return answer(error.code or 500, error.description or error.name)

    @scope.errorhandler(Exception)
    def unexpected(error: Exception) -> ResponseReturnValue:
        # A bug: log it with its traceback for the operator, answer without one.
        log.exception("unexpected error on %s %s", request.method, request.path)
        return answer(500, "internal error; the details are in the server log")
