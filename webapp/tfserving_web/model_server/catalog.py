"""Which served models take images: TF Serving has no list-models call, so configured candidate names
are probed and those whose signature takes one tensor of encoded image bytes are kept."""

from __future__ import annotations

import threading
import time

from tfserving_web.model_server import (
    Deadline,
    ImageSignature,
    ModelServerClient,
    ModelServerError,
    ModelServerTimeout,
    ModelServerUnreachable,
    serving_version,
)


class UnknownModel(Exception):
    """The request named a model that is not among the configured candidates."""

    status_code = 400


class NotAnImageModel(UnknownModel):
    """The named model is served, but its signature does not take encoded image bytes."""


class ModelCatalog:
    def __init__(
        self, client: ModelServerClient, candidates: list[str], signature_name: str, ttl_seconds: float
    ) -> None:
        self.client = client
        self.candidates = candidates
        self.signature_name = signature_name
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._cached: list[ImageSignature] | None = None
        self._cached_at = 0.0

    def _probe(self, name: str, deadline: Deadline) -> ImageSignature | None:
        try:
            return self.client.image_signature(name, self.signature_name, deadline)
        except (ModelServerUnreachable, ModelServerTimeout):
            raise  # the whole server is in trouble: say so instead of "no models"
        except ModelServerError:
            return None  # this one candidate is broken or absent; the others may be fine

    def image_models(self, deadline: Deadline) -> list[ImageSignature]:
        """Image models among the candidates, in configured order; reused for ttl_seconds."""
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached_at < self.ttl_seconds:
                return self._cached
        found = [signature for name in self.candidates if (signature := self._probe(name, deadline))]
        with self._lock:
            self._cached, self._cached_at = found, time.monotonic()
        return found

    def resolve(self, name: str, deadline: Deadline) -> ImageSignature:
        """The image signature of `name`. UnknownModel (400) if it is not a candidate, NotAnImageModel
        (400) if its signature takes no image bytes, ModelUnavailable (503) if it is not loaded."""
        if name not in self.candidates:
            raise UnknownModel(f"unknown model {name!r}; choose one of: {', '.join(self.candidates)}")
        for signature in self.image_models(deadline):
            if signature.model == name:
                return signature
        # Not in the (maybe stale) list: ask again for this one, so a model loaded a moment ago works,
        # and so the answer says why: not loaded (503, from the client) or not an image model (400).
        signature = self.client.image_signature(name, self.signature_name, deadline)
        if signature is None:
            # Either not loaded at all, or loaded with a signature that takes something else.
            serving_version(name, self.client.model_status(name, deadline))  # 503 when not loaded
            raise NotAnImageModel(
                f"model {name!r} does not take images: its signature {self.signature_name!r} has no "
                "single string input for encoded image bytes"
            )
        with self._lock:
            self._cached = None  # the list was stale; rebuild it next time
        return signature
