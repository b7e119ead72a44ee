"""TF Serving's REST API (the default transport): one urllib3 connection pool per worker process.

urllib3 directly, not `requests` on top of it: requests scans the process environment for proxy
settings on every call, which cost about a third of the front end's own time per prediction.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, ProtocolError, ReadTimeoutError
from urllib3.util import Retry, Timeout

from tfserving_web import metrics, model_server
from tfserving_web.model_server import Deadline, ImageSignature, ModelServerClient, Prediction, VersionStatus
from tfserving_web.model_server.versions import ServingVersions

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class RestClient(ModelServerClient):
    """TF Serving's REST API through a pool of kept-alive connections.

    Retries only when no connection could be made (the request was never sent, so even a POST is
    safe to repeat); a read timeout or a reset after sending is not retried.
    """

    def __init__(
        self,
        base_url: str,
        connect_timeout: float,
        connect_retries: int,
        pool_size: int = 10,
        version_ttl: float = 5.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.versions = ServingVersions(self.model_status, version_ttl)
        self.retry = Retry(
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
        # block=False: more threads than connections open extra ones instead of waiting.
        self.pool = urllib3.connection_from_url(self.base_url, maxsize=pool_size, block=False)
        self.path_prefix = urlsplit(self.base_url).path  # a proxy may serve TF Serving under a path

    def close(self) -> None:
        self.pool.close()

    def _model_url(self, model: str) -> str:
        """The path of the model's resources (the pool knows the host)."""
        return f"{self.path_prefix}/v1/models/{quote(model, safe='')}"

    def _call(self, method: str, url: str, deadline: Deadline, body: Any = None) -> tuple[int, Any]:
        """(HTTP status, decoded JSON or None); transport failures raise a ModelServerError."""
        timeout = Timeout(connect=self.connect_timeout, read=deadline.read_timeout())
        encoded = json.dumps(body).encode() if body is not None else None
        started, status = time.perf_counter(), 0
        try:
            response = self.pool.urlopen(
                method, url, body=encoded, headers=_JSON_HEADERS, retries=self.retry, timeout=timeout
            )
            status = response.status
        except ReadTimeoutError:
            raise self._timed_out(deadline) from None
        except (MaxRetryError, ProtocolError):
            # No connection could be made (after the retries), or it broke while the request was out.
            raise model_server.ModelServerUnreachable(
                f"model server unreachable at {self.base_url}"
            ) from None
        except HTTPError as error:
            raise model_server.ModelServerError(
                f"model server request failed: {type(error).__name__}"
            ) from None
        finally:
            metrics.observe_model_server_call("rest", time.perf_counter() - started, ok=status == 200)
        try:
            payload = json.loads(response.data)
        except ValueError:
            payload = None
        return response.status, payload

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
        """One call to TF Serving, against the version kept by `self.versions`, so the answer can say
        which version answered. When that version is gone (404), the status is asked again and the
        prediction repeated once against the version it names; if that version is not there either
        (hosts on different versions behind a load balancer), the server's own policy chooses and the
        version reported is the one the status call named."""
        body = {
            "signature_name": signature.signature_name,
            "instances": [{"b64": base64.b64encode(image).decode("ascii")}],
        }
        model = signature.model
        version = self.versions.current(model, deadline)
        pinned = f"{self._model_url(model)}/versions/{version}"
        status, payload, latency_ms = self._predict(pinned, body, deadline)
        if status == 404:
            self.versions.forget(model, version)
            version = self.versions.refresh(model, deadline)  # ModelUnavailable (503) if none serves
            pinned = f"{self._model_url(model)}/versions/{version}"
            status, payload, latency_ms = self._predict(pinned, body, deadline)
            if status == 404:
                status, payload, latency_ms = self._predict(self._model_url(model), body, deadline)
        if status == 404:
            raise model_server.ModelUnavailable(
                f"model {model!r} is not loaded: {self._error_message(status, payload)}"
            )
        if status != 200:
            self._raise_for(status, payload, "the prediction")
        predictions = payload.get("predictions") if isinstance(payload, Mapping) else None
        if not isinstance(predictions, list) or len(predictions) != 1:
            raise model_server.ModelServerError(f"model {model!r} sent no prediction for the image")
        class_id, probabilities = model_server.parse_outputs(model, predictions[0])
        return Prediction(model, version, class_id, probabilities, round(latency_ms, 2))

    def _predict(self, url: str, body: Any, deadline: Deadline) -> tuple[int, Any, float]:
        """(HTTP status, decoded JSON, milliseconds) of one POST <url>:predict."""
        started = time.perf_counter()
        status, payload = self._call("POST", f"{url}:predict", deadline, body)
        return status, payload, (time.perf_counter() - started) * 1000
