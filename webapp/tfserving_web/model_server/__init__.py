"""What the web front end knows of TensorFlow Serving, whatever the transport: the answers (version
status, image signature, prediction), the errors (each with the HTTP status the front end answers:
unreachable 503, timeout 504, input rejected by the server 400, else 502), one time budget per web
request, parsing shared by the transports, and the client interface that `rest_client` and
`grpc_client` implement."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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


def image_signature_from(
    model: str, signature_name: str, input_dtypes: Mapping[str, str | None]
) -> ImageSignature | None:
    """The signature if it takes exactly one input, a string tensor (DT_STRING) for the encoded image;
    `input_dtypes` maps each input's name to its dtype's name as TF Serving reports it."""
    if len(input_dtypes) != 1:
        return None
    ((input_name, dtype),) = input_dtypes.items()
    if dtype != "DT_STRING":
        return None
    return ImageSignature(model=model, signature_name=signature_name, input_name=input_name)


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
