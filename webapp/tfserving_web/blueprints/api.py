"""JSON API for programs: POST /api/predict."""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, current_app, jsonify, request

from tfserving_web.classify import classify
from tfserving_web.form_upload import form_fields, is_multipart, text_field
from tfserving_web.image_upload import BadImage
from tfserving_web.security import rate_limited

bp = Blueprint("api", __name__, url_prefix="/api")
# Per client address, before the body is read: 429 with Retry-After past RATE_LIMIT.
bp.before_request(rate_limited)


def _upload_from_request() -> tuple[bytes, str | None]:
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
    fields = form_fields(request, current_app.config["MAX_CONTENT_LENGTH"]) if is_multipart(request) else {}
    if "image" not in fields:
        raise BadImage('send the image as multipart field "image" or as JSON {"image_b64": ...}')
    return fields["image"], text_field(fields, "model")


@bp.post("/predict")
def predict() -> Response:
    """Classify one image.

    Body: multipart/form-data with field `image` (and optional `model`), or JSON
    `{"image_b64": "...", "model": "..."}`. Answers
    `{"model", "version", "class_id", "probabilities", "latency_ms"}`; errors are `{"error": "..."}`
    with 400 (bad image or input), 413 (too large), 503 (model server or model unavailable),
    504 (model server too slow), 502 (any other model server failure) or 429 (too many requests from
    this client; Retry-After says when to try again). Stateless: no cookie is read or set.
    """
    data, model = _upload_from_request()
    result = classify(data, model).prediction
    return jsonify(
        model=result.model,
        version=result.version,
        class_id=result.class_id,
        probabilities=result.probabilities,
        latency_ms=result.latency_ms,
    )
