"""One classification: check the upload, find the model, ask TF Serving, queue the upload for storing.
Shared by the page (a Flask view) and the JSON API (a WSGI app of its own, `prediction_api`), so both
answer the same way; each passes the Flask app that holds the settings and the per-process clients."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from tfserving_web.model_server import Deadline, ModelServerClient, Prediction
from tfserving_web.model_server.catalog import ModelCatalog
from tfserving_web.uploads.images import CheckedImage, check_image
from tfserving_web.uploads.queue import UploadQueue
from tfserving_web.uploads.store import PredictionStore, StoredPrediction


@dataclass(frozen=True)
class Classification:
    image: CheckedImage
    prediction: Prediction
    stored: StoredPrediction | None

    def top_classes(self, count: int) -> list[tuple[int, float]]:
        ranked = sorted(enumerate(self.prediction.probabilities), key=lambda pair: pair[1], reverse=True)
        return ranked[:count]


def model_client(app: Flask) -> ModelServerClient:
    return app.extensions["tfserving_client"]()


def model_catalog(app: Flask) -> ModelCatalog:
    return app.extensions["model_catalog"]()


def prediction_store(app: Flask) -> PredictionStore | None:
    return app.extensions["prediction_store"]


def upload_queue(app: Flask) -> UploadQueue | None:
    """This worker's queue of uploads to store; None when storing is switched off."""
    queue = app.extensions["upload_queue"]
    return queue() if queue is not None else None


def new_deadline(app: Flask) -> Deadline:
    return Deadline(app.config["READ_TIMEOUT"])


def classify(app: Flask, data: bytes, model_name: str | None, visitor: str = "") -> Classification:
    """Raises BadImage / UnknownModel (400) before TF Serving is called, ModelServerError after.
    The upload is queued for storing (as the visitor's, if any), never written while the client waits."""
    config = app.config
    image = check_image(data, config["MAX_IMAGE_PIXELS"])
    deadline = new_deadline(app)
    signature = model_catalog(app).resolve(model_name or config["MODEL_NAME"], deadline)
    prediction = model_client(app).predict_image(signature, image.model_bytes, deadline)
    queue = upload_queue(app)
    stored = queue.submit(image, prediction, visitor) if queue is not None else None
    return Classification(image=image, prediction=prediction, stored=stored)
