"""One request over each serving path, as a client of that path would send it.

Every path hands out callers: one per client thread, each with its own connection, sending image
`index % len(images)` and raising `RequestFailed` when the answer is not a prediction. Request bodies
are built once, before the clock runs, so the load generator's own cost stays small and alike for all.
"""

from __future__ import annotations

import base64
import http.client
import json
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

# Distinct multipart bodies (boundaries) sent in turn to the web front end.
MULTIPART_BODIES = 1024
# Long enough for a cold model; a request slower than this counts as failed.
REQUEST_TIMEOUT_SECONDS = 30.0


class RequestFailed(Exception):
    """The path answered, but not with a prediction (or did not answer in time)."""


class Caller(Protocol):
    def __call__(self, index: int) -> None: ...

    def close(self) -> None: ...


class ServingPath(ABC):
    """A way to get a prediction for an image."""

    name: str
    description: str

    def open(self) -> None:  # noqa: B027 - optional: load a model, open a channel
        """Done once, before the first caller."""

    @abstractmethod
    def caller(self) -> Caller:
        """A caller for one client thread."""

    def close(self) -> None:  # noqa: B027 - optional
        pass


def latest_version_dir(model_base: Path) -> Path:
    versions = [child for child in model_base.iterdir() if child.is_dir() and child.name.isdigit()]
    if not versions:
        raise FileNotFoundError(f"no numbered version folder in {model_base}")
    return max(versions, key=lambda child: int(child.name))


class InProcessFloor(ServingPath):
    """The SavedModel called in this process: what TF itself costs, with no server and no network."""

    description = "SavedModel signature called in the benchmark process (TensorFlow, no server)"

    def __init__(self, model_base: Path, images: list[bytes], name: str = "in-process") -> None:
        self.name = name
        self.model_base = model_base
        self.images = images

    def open(self) -> None:
        import tensorflow as tf

        self._model = tf.saved_model.load(str(latest_version_dir(self.model_base)))
        self._function = self._model.signatures["serving_default"]
        (input_name,) = self._function.structured_input_signature[1].keys()
        self._inputs = [{input_name: tf.constant([png])} for png in self.images]

    def caller(self) -> Caller:
        return _FloorCaller(self._function, self._inputs)


class _FloorCaller:
    def __init__(self, function: Any, inputs: list[dict[str, Any]]) -> None:
        self.function = function
        self.inputs = inputs

    def __call__(self, index: int) -> None:
        outputs = self.function(**self.inputs[index % len(self.inputs)])
        # Reading the result out is part of every path's cost (the servers serialize it).
        if outputs["probabilities"].numpy().size == 0:
            raise RequestFailed("no probabilities")

    def close(self) -> None:
        pass


class HttpPostPath(ServingPath):
    """POSTs prepared bodies with one kept-alive http.client connection per caller (lighter than
    `requests`, so the client takes less of the machine's two cores from the servers)."""

    def __init__(
        self,
        name: str,
        description: str,
        url: str,
        request_path: str,
        bodies: list[bytes],
        content_types: list[str],
        answer_key: str,
    ) -> None:
        self.name = name
        self.description = description
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.request_path = parts.path.rstrip("/") + request_path
        self.bodies = bodies
        # One Content-Type for all bodies, or one for each (multipart: each body its own boundary).
        self.headers = [{"Content-Type": content_type} for content_type in content_types]
        self.answer_key = answer_key

    def connection(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return kind(self.host, self.port, timeout=REQUEST_TIMEOUT_SECONDS)

    def caller(self) -> Caller:
        return _HttpCaller(self)


class _HttpCaller:
    def __init__(self, path: HttpPostPath) -> None:
        self.path = path
        self.connection = path.connection()

    def __call__(self, index: int) -> None:
        path = self.path
        try:
            self.connection.request(
                "POST",
                path.request_path,
                body=path.bodies[index % len(path.bodies)],
                headers=path.headers[index % len(path.headers)],
            )
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()  # the next request opens a new connection
            raise RequestFailed(f"{type(error).__name__}: {error}") from None
        if response.status != 200:
            raise RequestFailed(f"HTTP {response.status}: {data[:200]!r}")
        if path.answer_key not in json.loads(data):
            raise RequestFailed(f"no {path.answer_key!r} in the answer: {data[:200]!r}")

    def close(self) -> None:
        self.connection.close()


def direct_rest(rest_url: str, model: str, images: list[bytes], name: str = "rest") -> HttpPostPath:
    """TF Serving's REST :predict, unpinned, as a program calling it directly would."""
    bodies = [
        json.dumps(
            {"signature_name": "serving_default", "instances": [{"b64": base64.b64encode(png).decode()}]}
        ).encode()
        for png in images
    ]
    return HttpPostPath(
        name,
        f"TF Serving REST POST {rest_url}/v1/models/{model}:predict (b64 JSON)",
        rest_url,
        f"/v1/models/{model}:predict",
        bodies,
        ["application/json"],
        "predictions",
    )


def multipart_body(png: bytes, boundary: str) -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="digit.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )


def web_front_end(web_url: str, images: list[bytes], name: str, description: str) -> HttpPostPath:
    """The web front end's JSON API with a multipart upload, as its clients send it: browsers, curl and
    `requests` make a new random boundary for every upload, so every body here has its own too (more
    than the regular-expression cache of a parser that compiles one per boundary would hold)."""
    boundaries = [uuid.uuid4().hex for _ in range(MULTIPART_BODIES)]
    return HttpPostPath(
        name,
        description,
        web_url,
        "/api/predict",
        [multipart_body(images[n % len(images)], boundary) for n, boundary in enumerate(boundaries)],
        [f"multipart/form-data; boundary={boundary}" for boundary in boundaries],
        "class_id",
    )


def predict_requests(target: str, model: str, images: list[bytes]) -> list[bytes]:
    """A serialized PredictRequest per image for the model's serving_default signature, its input named
    as the server describes it: made before the clock runs."""
    from tfserving_web.model_server import Deadline
    from tfserving_web.model_server.grpc_client import GrpcClient
    from tfserving_web.model_server.protos import load_protos

    client = GrpcClient(target, connect_timeout=5)
    try:
        signature = client.image_signature(model, "serving_default", Deadline(60))
    finally:
        client.close()
    if signature is None:
        raise RequestFailed(f"model {model!r} has no serving_default signature taking image bytes")
    protos = load_protos()
    requests = []
    for png in images:
        request = protos.PredictRequest()
        request.model_spec.name = model
        request.model_spec.signature_name = "serving_default"
        request.inputs[signature.input_name].CopyFrom(protos.string_tensor([png]))
        requests.append(request.SerializeToString())
    return requests


def predict_channel(target: str) -> tuple[Any, Any]:
    """(channel, Predict) to TF Serving with the web front end's channel options. No request
    serializer: the prepared bytes (predict_requests) go out as they are; answers are parsed."""
    import grpc

    from tfserving_web.model_server.grpc_client import CHANNEL_OPTIONS
    from tfserving_web.model_server.protos import PREDICT_METHOD, load_protos

    channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    parse = load_protos().PredictResponse.FromString
    return channel, channel.unary_unary(PREDICT_METHOD, response_deserializer=parse)


class DirectGrpc(ServingPath):
    """TF Serving's gRPC Predict on one shared channel (gRPC multiplexes the calls of all threads on
    it, as a client process would); requests are serialized once, before the clock runs."""

    def __init__(self, target: str, model: str, images: list[bytes], name: str = "grpc") -> None:
        self.name = name
        self.description = f"TF Serving gRPC PredictionService/Predict ({target})"
        self.target = target
        self.model = model
        self.images = images

    def open(self) -> None:
        import grpc

        self._requests = predict_requests(self.target, self.model, self.images)
        self._channel, self._predict = predict_channel(self.target)
        self._rpc_error = grpc.RpcError

    def caller(self) -> Caller:
        return _GrpcCaller(self)

    def close(self) -> None:
        self._channel.close()


class _GrpcCaller:
    def __init__(self, path: DirectGrpc) -> None:
        self.path = path

    def __call__(self, index: int) -> None:
        path = self.path
        try:
            response = path._predict(
                path._requests[index % len(path._requests)], timeout=REQUEST_TIMEOUT_SECONDS
            )
        except path._rpc_error as error:
            raise RequestFailed(f"gRPC {error.code().name}: {error.details()}") from None
        if "probabilities" not in response.outputs:
            raise RequestFailed("no probabilities in the answer")

    def close(self) -> None:
        pass
