"""One classification: check the upload, find the model, ask TF Serving, queue the upload for storing.
Shared by the page and the JSON API so both answer the same way."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from tfserving_web.image_upload import CheckedImage, check_image
from tfserving_web.model_catalog import ModelCatalog
from tfserving_web.model_server import Deadline, ModelServerClient, Prediction
from tfserving_web.prediction_store import PredictionStore, StoredPrediction
from tfserving_web.upload_queue import UploadQueue


@dataclass(frozen=True)
class Classification:
    image: CheckedImage
    prediction: Prediction
    stored: StoredPrediction | None

    def top_classes(self, count: int) -> list[tuple[int, float]]:
        ranked = sorted(enumerate(self.prediction.probabilities), key=lambda pair: pair[1], reverse=True)
        return ranked[:count]


def model_client() -> ModelServerClient:
    return current_app.extensions["tfserving_client"]()


def model_catalog() -> ModelCatalog:
    return current_app.extensions["model_catalog"]()


def prediction_store() -> PredictionStore | None:
    return current_app.extensions["prediction_store"]


def upload_queue() -> UploadQueue | None:
    """This worker's queue of uploads to store; None when storing is switched off."""
    queue = current_app.extensions["upload_queue"]
    return queue() if queue is not None else None


def new_deadline() -> Deadline:
    return Deadline(current_app.config["READ_TIMEOUT"])


def classify(data: bytes, model_name: str | None, visitor: str = "") -> Classification:
    """Raises BadImage / UnknownModel (400) before TF Serving is called, ModelServerError after.
    The upload is queued for storing (as the visitor's, if any), never written while the client waits."""
    config = current_app.config
    image = check_image(data, config["MAX_IMAGE_PIXELS"])
    deadline = new_deadline()
    signature = model_catalog().resolve(model_name or config["MODEL_NAME"], deadline)
    prediction = model_client().predict_image(signature, image.model_bytes, deadline)
    queue = upload_queue()
    stored = queue.submit(image, prediction, visitor) if queue is not None else None
    return Classification(image=image, prediction=prediction, stored=stored)
