"""Web front end of tfserving-stack: a page and a JSON API that classify uploaded images through
TensorFlow Serving. `create_app()` is the WSGI application factory; gunicorn loads it through
`tfserving_web.gunicorn_conf` (`gunicorn -c python:tfserving_web.gunicorn_conf`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from tfserving_web import settings
from tfserving_web.blueprints import health, monitoring, pages
from tfserving_web.errors import register_error_handlers
from tfserving_web.model_server import ModelServerClient
from tfserving_web.model_server.catalog import ModelCatalog
from tfserving_web.model_server.clients import create_client
from tfserving_web.per_process import PerProcess
from tfserving_web.prediction_api import PredictionApi
from tfserving_web.security import init_security
from tfserving_web.uploads.images import refuse_decompression_bombs
from tfserving_web.uploads.queue import UploadQueue
from tfserving_web.uploads.store import PredictionStore, start_expiry_thread
from tfserving_web.visitors import configure_cookie


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Settings come from defaults, then `<instance>/webapp.cfg` (or TFWEB_CONFIG_FILE), then
    TFWEB_* environment variables, then `test_config`. Nothing here contacts TF Serving, so
    `gunicorn --check-config` works without a model server."""
    app = Flask(__name__, instance_path=settings.default_instance_path())
    settings.load_into(app.config, app.instance_path, test_config)
    # First, so its timer starts before any other hook runs.
    app.register_blueprint(monitoring.bp)

    client: PerProcess[ModelServerClient] = PerProcess(lambda: create_client(app.config))
    app.extensions["tfserving_client"] = client
    app.extensions["model_catalog"] = PerProcess(
        lambda: ModelCatalog(
            client(),
            candidates=app.config["MODEL_CANDIDATES"],
            signature_name=app.config["SIGNATURE_NAME"],
            ttl_seconds=app.config["MODEL_LIST_TTL"],
        )
    )
    store = (
        PredictionStore(
            app.config["UPLOAD_FOLDER"],
            keep=app.config["UPLOADS_KEPT"],
            max_age=app.config["UPLOADS_MAX_AGE"],
        )
        if app.config["STORE_UPLOADS"]
        else None
    )
    app.extensions["prediction_store"] = store
    # Its storing thread, like the client's connections, belongs to one worker process.
    app.extensions["upload_queue"] = (
        PerProcess(lambda: UploadQueue(store, app.config["UPLOAD_QUEUE_SIZE"])) if store is not None else None
    )
    # One thread per worker process, started by its first request (the page's or the API's).
    expiry = PerProcess(lambda: start_expiry_thread(store)) if store is not None else None
    app.extensions["upload_expiry"] = expiry
    if expiry is not None:

        @app.before_request
        def start_expiry() -> None:
            expiry()

    refuse_decompression_bombs()
    init_security(app)
    configure_cookie(app)

    app.register_blueprint(pages.bp)
    app.register_blueprint(health.bp)
    register_error_handlers(app)
    # In front of Flask, so the JSON API's requests skip Flask's machinery (see prediction_api).
    app.wsgi_app = PredictionApi(app, app.wsgi_app)  # type: ignore[method-assign]
    return app
