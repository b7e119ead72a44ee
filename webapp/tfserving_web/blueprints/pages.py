"""The HTML page: upload form, result with bars, recent predictions."""

from __future__ import annotations

import base64
import io

from flask import Blueprint, abort, current_app, render_template, request, send_file
from werkzeug.wrappers import Response

from tfserving_web import metrics
from tfserving_web.classify import (
    Classification,
    classify,
    model_catalog,
    new_deadline,
    prediction_store,
    upload_queue,
)
from tfserving_web.errors import register_error_handlers
from tfserving_web.model_server import ModelServerError
from tfserving_web.prediction_api import PREDICT_PATH
from tfserving_web.security import is_cross_site_post
from tfserving_web.uploads.form import form_fields, is_multipart, text_field
from tfserving_web.uploads.images import ALLOWED_FORMATS, preview_png
from tfserving_web.uploads.store import StoredPrediction
from tfserving_web.visitors import current_visitor

bp = Blueprint("pages", __name__)

# The page waits this long at most for this worker's queued uploads, so its list shows them.
STORED_WAIT_SECONDS = 2.0


def _image_models(ask_server: bool) -> tuple[list[str], str | None]:
    """Model names for the picker and a notice when TF Serving could not be asked."""
    default = current_app.config["MODEL_NAME"]
    if not ask_server:
        return [default], None
    try:
        signatures = model_catalog(current_app).image_models(new_deadline(current_app))
        names = [signature.model for signature in signatures]
    except ModelServerError as error:
        return [default], error.message
    return names or [default], None if names else f"no image model is served right now (tried {default!r})"


def render_page(
    error: str | None = None, classification: Classification | None = None, selected_model: str | None = None
) -> str:
    config = current_app.config
    # After a failure, do not wait on TF Serving again just to fill the picker.
    models, notice = _image_models(ask_server=error is None)
    result = None
    if classification is not None:
        prediction = classification.prediction
        result = {
            "model": prediction.model,
            "version": prediction.version,
            "class_id": prediction.class_id,
            "confidence": prediction.probabilities[prediction.class_id]
            if 0 <= prediction.class_id < len(prediction.probabilities)
            else None,
            "latency_ms": prediction.latency_ms,
            "top": classification.top_classes(config["TOP_CLASSES"]),
            "image_data_url": "data:image/png;base64,"
            + base64.b64encode(preview_png(classification.image)).decode("ascii"),
            "width": classification.image.width,
            "height": classification.image.height,
            "format": classification.image.format,
        }
    return render_template(
        "index.html",
        models=models,
        selected_model=selected_model or config["MODEL_NAME"],
        notice=notice,
        error=error,
        result=result,
        recent=_recent_predictions(config["RECENT_SHOWN"], current_visitor(create=True)),
        max_upload_mib=config["MAX_CONTENT_LENGTH"] / (1024 * 1024),
        accepted_formats=", ".join(ALLOWED_FORMATS),
        predict_url=request.script_root + PREDICT_PATH,  # the JSON API, outside Flask's URL map
    )


def _recent_predictions(count: int, visitor: str) -> list[StoredPrediction]:
    store, queue = prediction_store(current_app), upload_queue(current_app)
    if store is None or count == 0:
        return []
    if queue is not None:
        # Uploads are stored by a thread of their own: wait for this worker's, so an upload just made
        # is listed (the JSON API never waits; only the page does).
        queue.flush(STORED_WAIT_SECONDS)
    return store.recent(count, visitor)


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_page(error=message), status


# Failures in this blueprint's views answer with the page and the message, not JSON.
register_error_handlers(bp, _error_page)


@bp.before_request
def refuse_cross_site_posts() -> tuple[str, int] | None:
    """A form post from a page of another origin is refused before anything else: the visitor's
    cookie is SameSite=Lax, and this Origin check stops what SameSite lets through (same site,
    other origin, e.g. another port of the same host)."""
    if request.method == "POST" and is_cross_site_post(request):
        metrics.count_rejection(metrics.REASON_CROSS_SITE)
        return "Cross-site form posts are refused.\n", 403
    return None


@bp.get("/")
def index() -> str:
    """The upload form, the image models to pick from and the latest predictions."""
    return render_page()


@bp.post("/")
def upload() -> str:
    """Classify the uploaded file (form field `image`) and show the result on the page."""
    fields = form_fields(request, current_app.config["MAX_CONTENT_LENGTH"]) if is_multipart(request) else {}
    model = text_field(fields, "model")
    data = fields.get("image", b"")
    visitor = current_visitor(create=True)
    return render_page(classification=classify(current_app, data, model, visitor), selected_model=model)


@bp.get("/uploads/<filename>")
def stored_file(filename: str) -> Response:
    """A stored upload or thumbnail of this visitor's; only names the app generated are served, as the
    image type they were checked to be (the name's extension, chosen by the app; nosniff)."""
    store = prediction_store(current_app)
    picture = store.picture(filename, current_visitor(create=False)) if store is not None else None
    if picture is None:
        abort(404)
    # A name's picture never changes: the name serves as its ETag.
    response = send_file(
        io.BytesIO(picture.data), mimetype=_IMAGE_TYPES[picture.extension], max_age=3600, etag=filename
    )
    # Private to the visitor: no shared cache may keep it.
    response.cache_control.public = False
    response.cache_control.private = True
    return response


_IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "webp": "image/webp",
}
