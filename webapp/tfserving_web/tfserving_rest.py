"""TF Serving's REST API (the default transport): one pooled `requests.Session` per worker process."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ReadTimeoutError
from urllib3.util import Retry

from tfserving_web import model_server
from tfserving_web.model_server import Deadline, ImageSignature, ModelServerClient, Prediction, VersionStatus


def _is_read_timeout(error: requests.exceptions.ConnectionError) -> bool:
    """requests reports some read timeouts as a ConnectionError (while reading the body, or wrapped by
    urllib3's retry accounting): those are timeouts, not an unreachable server."""
    cause = error.args[0] if error.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return isinstance(cause, ReadTimeoutError)


class RestClient(ModelServerClient):
    """TF Serving's REST API through a pooled session.

    Retries only when no connection could be made (the request was never sent, so even a POST is
    safe to repeat); a read timeout or a reset after sending is not retried.
    """

    def __init__(self, base_url: str, connect_timeout: float, connect_retries: int, pool_size: int = 10):
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        retry = Retry(
            total=connect_retries,
            connect=connect_retries,
            # False: a read error is raised as it is (not wrapped in MaxRetryError), so a read timeout
            # stays a timeout (504) for GET as for POST.
            read=False,
            redirect=0,
            status=0,
            other=0,
            backoff_factor=0.1,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=retry)
        self.session = requests.Session()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def _model_url(self, model: str) -> str:
        return f"{self.base_url}/v1/models/{quote(model, safe='')}"

    def _call(self, method: str, url: str, deadline: Deadline, body: Any = None) -> tuple[int, Any]:
        """(HTTP status, decoded JSON or None); transport failures raise a ModelServerError."""
        timeout = (self.connect_timeout, deadline.read_timeout())
        try:
            response = self.session.request(method, url, json=body, timeout=timeout)
        except requests.exceptions.ReadTimeout:
            raise self._timed_out(deadline) from None
        except requests.exceptions.ConnectionError as error:
            if _is_read_timeout(error):
                raise self._timed_out(deadline) from None
            raise model_server.ModelServerUnreachable(
                f"model server unreachable at {self.base_url}"
            ) from None
        except requests.exceptions.RequestException as error:
            raise model_server.ModelServerError(
                f"model server request failed: {type(error).__name__}"
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return response.status_code, payload

    def _timed_out(self, deadline: Deadline) -> model_server.ModelServerTimeout:
        message = f"model server did not answer within {deadline.seconds:g} s ({self.base_url})"
        return model_server.ModelServerTimeout(message)

    @staticmethod
    def _error_message(status: int, payload: Any) -> str:
        if isinstance(payload, Mapping) and isinstance(payload.get("error"), str):
            return payload["error"]
        return f"HTTP {status} without an error message"

    def _raise_for(self, status: int, payload: Any, what: str) -> None:
        message = self._error_message(status, payload)
        if status == 400:
            raise model_server.InputRejected(message)
        if status == 503:
            raise model_server.ModelServerUnreachable(f"model server unavailable: {message}")
        if status == 504:
            raise model_server.ModelServerTimeout(f"model server timed out: {message}")
        raise model_server.ModelServerError(f"model server refused {what} (HTTP {status}): {message}")

    def model_status(self, model: str, deadline: Deadline) -> list[VersionStatus]:
        status, payload = self._call("GET", self._model_url(model), deadline)
        if status == 404:
            # "Could not find any versions of model ...": configured but not (or no longer) loaded.
            raise model_server.ModelUnavailable(
                f"model {model!r} is not loaded: {self._error_message(status, payload)}"
            )
        if status != 200:
            self._raise_for(status, payload, "the status call")
        try:
            return [
                VersionStatus(
                    version=int(entry["version"]),
                    state=str(entry["state"]),
                    error_code=str(entry.get("status", {}).get("error_code", "OK")),
                    error_message=str(entry.get("status", {}).get("error_message", "")),
                )
                for entry in payload["model_version_status"]
            ]
        except (KeyError, TypeError, ValueError):
            raise model_server.ModelServerError(
                f"model server sent an unreadable status for {model!r}"
            ) from None

    def image_signature(self, model: str, signature_name: str, deadline: Deadline) -> ImageSignature | None:
        status, payload = self._call("GET", f"{self._model_url(model)}/metadata", deadline)
        if status == 404:
            return None
        if status != 200:
            self._raise_for(status, payload, "the metadata call")
        try:
            signatures = payload["metadata"]["signature_def"]["signature_def"]
        except (KeyError, TypeError):
            raise model_server.ModelServerError(
                f"model server sent unreadable metadata for {model!r}"
            ) from None
        signature = signatures.get(signature_name) if isinstance(signatures, Mapping) else None
        if not isinstance(signature, Mapping):
            return None
        inputs = signature.get("inputs") or {}
        input_dtypes = {
            name: info.get("dtype") if isinstance(info, Mapping) else None for name, info in inputs.items()
        }
        return model_server.image_signature_from(model, signature_name, input_dtypes)

    def predict_image(self, signature: ImageSignature, image: bytes, deadline: Deadline) -> Prediction:
        body = {
            "signature_name": signature.signature_name,
            "instances": [{"b64": base64.b64encode(image).decode("ascii")}],
        }
        # Ask a pinned version so the version reported is the one that answered. If it was unloaded
        # between the two calls (a new version took over), ask once more with the fresh status.
        for attempt in range(2):
            version = model_server.serving_version(
                signature.model, self.model_status(signature.model, deadline)
            )
            url = f"{self._model_url(signature.model)}/versions/{version}:predict"
            started = time.perf_counter()
            status, payload = self._call("POST", url, deadline, body)
            latency_ms = (time.perf_counter() - started) * 1000
            if status == 404 and attempt == 0:
                continue
            if status != 200:
                self._raise_for(status, payload, "the prediction")
            predictions = payload.get("predictions") if isinstance(payload, Mapping) else None
            if not isinstance(predictions, list) or len(predictions) != 1:
                raise model_server.ModelServerError(
                    f"model {signature.model!r} sent no prediction for the image"
                )
            class_id, probabilities = model_server.parse_outputs(signature.model, predictions[0])
            return Prediction(signature.model, version, class_id, probabilities, round(latency_ms, 2))
        raise model_server.ModelUnavailable(
            f"model {signature.model!r} changed versions twice during one request"
        )
