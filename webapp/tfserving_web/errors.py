"""Turns every failure into a short answer with the right status: JSON for the API and health
endpoints, the page with a message for the browser. Never a traceback, never Flask's HTML 500."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from tfserving_web.image_upload import BadImage
from tfserving_web.model_catalog import UnknownModel
from tfserving_web.model_server import ModelServerError

log = logging.getLogger(__name__)

EXPECTED_ERRORS = (BadImage, UnknownModel, ModelServerError)


def _wants_page() -> bool:
    return request.blueprint == "pages"


def error_response(status: int, message: str) -> tuple[Response | str, int]:
    if _wants_page():
        from tfserving_web.blueprints.pages import render_page

        return render_page(error=message), status
    return jsonify(error=message), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(BadImage)
    @app.errorhandler(UnknownModel)
    def bad_input(error: BadImage | UnknownModel) -> tuple[Response | str, int]:
        return error_response(error.status_code, str(error))

    @app.errorhandler(ModelServerError)
    def model_server_failed(error: ModelServerError) -> tuple[Response | str, int]:
        log.warning("%s %s -> %d: %s", request.method, request.path, error.status_code, error.message)
        return error_response(error.status_code, error.message)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> tuple[Response | str, int]:
        limit = app.config["MAX_CONTENT_LENGTH"]
        return error_response(413, f"upload is larger than the limit of {limit} bytes")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response | str, int]:
        return error_response(error.code or 500, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response | str, int]:
        # A bug: log it with its traceback for the operator, answer without one.
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal error; the details are in the server log")
