"""Talks to TensorFlow Serving: model status, signature metadata and image predictions.

REST (default) uses one pooled `requests.Session` per worker process; gRPC lives in
`tfserving_grpc.py` and is imported only when configured, since its stubs pull in TensorFlow.
Every failure leaves this module as a `ModelServerError` whose `status_code` is what the web
front end answers: unreachable 503, timeout 504, input rejected by the server 400, else 502.
"""

from __future__ import annotations

import base64
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ReadTimeoutError
from urllib3.util import Retry


class ModelServerError(Exception):
    """TF Serving could not give an answer; `status_code` is the HTTP status to pass on."""

    status_code = 502

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelServerUnreachable(ModelServerError):
    status_code = 503


class ModelServerTimeout(ModelServerError):
    status_code = 504


class ModelUnavailable(ModelServerError):
    """The server answers but the model has no version AVAILABLE with error_code OK."""

    status_code = 503


class InputRejected(ModelServerError):
    """The server refused the input (its 400 / INVALID_ARGUMENT); the message is the server's."""

    status_code = 400


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str
    error_code: str
    error_message: str

    @property
    def serving(self) -> bool:
        # The status call answers 200 whatever the state: both fields must be read.
        return self.state == "AVAILABLE" and self.error_code == "OK"


@dataclass(frozen=True)
class ImageSignature:
    """A signature that takes one tensor of encoded image bytes (tf.string)."""

    model: str
    signature_name: str
    input_name: str


@dataclass(frozen=True)
class Prediction:
    model: str
    version: int
    class_id: int
    probabilities: list[float]
    latency_ms: float


class Deadline:
    """One budget for all TF Serving calls of one web request, so three calls in a row cannot
    add up to three read timeouts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends_at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._ends_at - time.monotonic()

    def read_timeout(self) -> float:
        remaining = self.remaining()
        if remaining <= 0:
            raise ModelServerTimeout(f"model server did not answer within {self.seconds:g} s")
        return remaining


def serving_version(model: str, statuses: list[VersionStatus]) -> int:
    """The version TF Serving's default (latest) policy answers with: the highest one serving."""
    serving = [status.version for status in statuses if status.serving]
    if not serving:
        raise ModelUnavailable(unavailable_reason(model, statuses))
    return max(serving)


def unavailable_reason(model: str, statuses: list[VersionStatus]) -> str:
    if not statuses:
        return f"model {model!r} has no versions loaded"
    described = ", ".join(
        f"version {status.version} {status.state}"
        + (f" ({status.error_code}: {status.error_message})" if status.error_code != "OK" else "")
        for status in statuses
    )
    return f"model {model!r} is not available: {described}"


def parse_outputs(model: str, outputs: Any) -> tuple[int, list[float]]:
    """class_id and probabilities from one prediction row (a dict of named outputs or a bare list)."""
    if isinstance(outputs, Mapping):
        probabilities = outputs.get("probabilities")
        class_id = outputs.get("class_id")
    else:
        probabilities, class_id = outputs, None
    if (
        not isinstance(probabilities, list)
        or not probabilities
        or not all(isinstance(value, int | float) for value in probabilities)
    ):
        raise ModelServerError(f"model {model!r} did not return a list of probabilities")
    values = [float(value) for value in probabilities]
    if class_id is None:
        class_id = max(range(len(values)), key=values.__getitem__)
    if isinstance(class_id, list) and len(class_id) == 1:
        class_id = class_id[0]
    if not isinstance(class_id, int) or isinstance(class_id, bool):
        raise ModelServerError(f"model {model!r} returned a class_id that is not an integer")
    return class_id, values


class ModelServerClient(ABC):
    """What the web front end needs from TF Serving, whatever the transport."""

    @abstractmethod
    def model_status(self, model: str, deadline: Deadline) -> list[VersionStatus]: ...

    @abstractmethod
    def image_signature(self, model: str, signature_name: str, deadline: Deadline) -> ImageSignature | None:
        """The signature if it takes one tf.string input, None if the model is not an image model."""

    @abstractmethod
    def predict_image(self, signature: ImageSignature, image: bytes, deadline: Deadline) -> Prediction: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        pass


def _string_input(model: str, signature_name: str, inputs: Mapping[str, Any]) -> ImageSignature | None:
    if len(inputs) != 1:
        return None
    (input_name, info), = inputs.items()
    if not isinstance(info, Mapping) or info.get("dtype") != "DT_STRING":
        return None
    return ImageSignature(model=model, signature_name=signature_name, input_name=input_name)


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
        """(HTTP status, decoded JSON or None) or a ModelServerError for transport failures."""
        timeout = (self.connect_timeout, deadline.read_timeout())
        try:
            response = self.session.request(method, url, json=body, timeout=timeout)
        except requests.exceptions.ReadTimeout:
            raise ModelServerTimeout(
                f"model server did not answer within {deadline.seconds:g} s ({self.base_url})"
            ) from None
        except requests.exceptions.ConnectionError as error:
            # requests reports some read timeouts as a ConnectionError (while reading the body, or
            # wrapped by urllib3's retry accounting): those are timeouts, not an unreachable server.
            cause = error.args[0] if error.args else None
            if isinstance(cause, MaxRetryError):
                cause = cause.reason
            if isinstance(cause, ReadTimeoutError):
                raise ModelServerTimeout(
                    f"model server did not answer within {deadline.seconds:g} s ({self.base_url})"
                ) from None
            raise ModelServerUnreachable(f"model server unreachable at {self.base_url}") from None
        except requests.exceptions.RequestException as error:
            raise ModelServerError(f"model server request failed: {type(error).__name__}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return response.status_code, payload

    @staticmethod
    def _error_message(status: int, payload: Any) -> str:
        if isinstance(payload, Mapping) and isinstance(payload.get("error"), str):
            return payload["error"]
        return f"HTTP {status} without an error message"

    def _raise_for(self, status: int, payload: Any, what: str) -> None:
        message = self._error_message(status, payload)
        if status == 400:
            raise InputRejected(message)
        if status == 503:
            raise ModelServerUnreachable(f"model server unavailable: {message}")
        if status == 504:
            raise ModelServerTimeout(f"model server timed out: {message}")
        raise ModelServerError(f"model server refused {what} (HTTP {status}): {message}")

    def model_status(self, model: str, deadline: Deadline) -> list[VersionStatus]:
        status, payload = self._call("GET", self._model_url(model), deadline)
        if status == 404:
            # "Could not find any versions of model ...": configured but not (or no longer) loaded.
            raise ModelUnavailable(f"model {model!r} is not loaded: {self._error_message(status, payload)}")
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
            raise ModelServerError(f"model server sent an unreadable status for {model!r}") from None

    def image_signature(self, model: str, signature_name: str, deadline: Deadline) -> ImageSignature | None:
        status, payload = self._call("GET", f"{self._model_url(model)}/metadata", deadline)
        if status == 404:
            return None
        if status != 200:
            self._raise_for(status, payload, "the metadata call")
        try:
            signatures = payload["metadata"]["signature_def"]["signature_def"]
        except (KeyError, TypeError):
            raise ModelServerError(f"model server sent unreadable metadata for {model!r}") from None
        signature = signatures.get(signature_name) if isinstance(signatures, Mapping) else None
        if not isinstance(signature, Mapping):
            return None
        return _string_input(model, signature_name, signature.get("inputs") or {})

    def predict_image(self, signature: ImageSignature, image: bytes, deadline: Deadline) -> Prediction:
        body = {
            "signature_name": signature.signature_name,
            "instances": [{"b64": base64.b64encode(image).decode("ascii")}],
        }
        # Ask a pinned version so the version reported is the one that answered. If it was unloaded
        # between the two calls (a new version took over), ask once more with the fresh status.
        for attempt in range(2):
            version = serving_version(signature.model, self.model_status(signature.model, deadline))
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
                raise ModelServerError(f"model {signature.model!r} sent no prediction for the image")
            class_id, probabilities = parse_outputs(signature.model, predictions[0])
            return Prediction(signature.model, version, class_id, probabilities, round(latency_ms, 2))
        raise ModelUnavailable(f"model {signature.model!r} changed versions twice during one request")


def create_client(config: Mapping[str, Any]) -> ModelServerClient:
    """The client for the configured transport; gRPC imports its heavy stubs only here."""
    if config["TFSERVING_TRANSPORT"] == "grpc":
        from tfserving_web.tfserving_grpc import GrpcClient

        return GrpcClient(config["TFSERVING_GRPC_TARGET"], connect_timeout=config["CONNECT_TIMEOUT"])
    return RestClient(
        config["TFSERVING_REST_URL"],
        connect_timeout=config["CONNECT_TIMEOUT"],
        connect_retries=config["CONNECT_RETRIES"],
    )
