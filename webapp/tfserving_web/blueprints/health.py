"""Liveness and readiness for systemd, load balancers and the deploy's health check."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from tfserving_web.classify import model_client, new_deadline
from tfserving_web.model_server import ModelServerError, serving_version

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers; says nothing about TF Serving."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 only when TF Serving reports the default model AVAILABLE with error_code OK, else 503
    with the reason (the status call itself answers 200 whatever the state, so both are read)."""
    model = current_app.config["MODEL_NAME"]
    try:
        statuses = model_client(current_app).model_status(model, new_deadline(current_app))
        version = serving_version(model, statuses)
    except ModelServerError as error:
        return jsonify(status="not ready", model=model, reason=error.message), 503
    return jsonify(status="ready", model=model, version=version), 200
