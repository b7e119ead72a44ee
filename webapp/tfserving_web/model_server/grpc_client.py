"""TF Serving over gRPC (TFWEB_TFSERVING_TRANSPORT=grpc).

Needs only `grpcio` and `protobuf` (the `grpc` extra of tfserving-web): the messages come from the
descriptors shipped in this package (`protos`), the calls are generic unary-unary calls on the
method paths, and the one input tensor (a batch of one encoded image) is built without numpy. Imported
only when this transport is configured, so a REST deployment loads no gRPC at all.

One prediction is one call: PredictResponse.model_spec names the version that answered.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from tfserving_web import metrics, model_server
from tfserving_web.model_server import Deadline, ImageSignature, ModelServerClient, Prediction, VersionStatus
from tfserving_web.model_server.protos import (
    GET_MODEL_METADATA_METHOD,
    GET_MODEL_STATUS_METHOD,
    PREDICT_METHOD,
    enum_name,
    load_protos,
)

# Codes TF Serving uses when the request itself is wrong (REST maps them to 400 too).
_INPUT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
}
_SIGNATURE_DEF_MAP_TYPE = "type.googleapis.com/tensorflow.serving.SignatureDefMap"

# Answers (probabilities of 10 classes) are small; the limits leave room for bigger models and for
# the largest upload the app accepts. TF Serving itself accepts messages up to 2 GiB.
MAX_MESSAGE_BYTES = 64 << 20
# An idle connection is pinged every 5 minutes (the most often a default gRPC server, TF Serving
# included, accepts pings without calls; more often earns a GOAWAY "too_many_pings"), so a
# connection a NAT or load balancer dropped silently is found before a request waits on it.
KEEPALIVE_TIME_MS = 300_000
KEEPALIVE_TIMEOUT_MS = 20_000
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]


def _first_row(response: Any) -> dict[str, Any]:
    """The outputs of the batch's one image as REST names them: `probabilities` (a list of floats)
    and, if the model returns one, `class_id`."""
    outputs: dict[str, Any] = {}
    if "probabilities" in response.outputs:
        outputs["probabilities"] = list(response.outputs["probabilities"].float_val)
    if "class_id" in response.outputs and response.outputs["class_id"].int64_val:
        outputs["class_id"] = int(response.outputs["class_id"].int64_val[0])
    return outputs


class GrpcClient(ModelServerClient):
    """One channel per worker process (the app builds its client through PerProcess, so the channel
    is created after gunicorn's fork); gRPC reconnects by itself after the server comes back."""

    def __init__(self, target: str, connect_timeout: float) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self.protos = protos = load_protos()
        self.channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._predict = self._method(PREDICT_METHOD, protos.PredictResponse)
        self._metadata = self._method(GET_MODEL_METADATA_METHOD, protos.GetModelMetadataResponse)
        self._status = self._method(GET_MODEL_STATUS_METHOD, protos.GetModelStatusResponse)

    def _method(self, path: str, response_class: Any) -> grpc.UnaryUnaryMultiCallable:
        return self.channel.unary_unary(
            path,
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )

    def close(self) -> None:
        self.channel.close()

    def _timeout(self, deadline: Deadline) -> float:
        # gRPC has one deadline per call: the connection attempt comes out of the same budget.
        return self.connect_timeout + deadline.read_timeout()

    def _rpc(self, method: Any, request: Any, deadline: Deadline, model: str, what: str) -> Any:
        timeout = self._timeout(deadline)
        started, ok = time.perf_counter(), False
        try:
            response = method(request, timeout=timeout)
            ok = True
            return response
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            if code == grpc.StatusCode.UNAVAILABLE:
                raise model_server.ModelServerUnreachable(
                    f"model server unreachable at {self.target}"
                ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise model_server.ModelServerTimeout(
                    f"model server did not answer within {deadline.seconds:g} s ({self.target})"
                ) from None
            if code == grpc.StatusCode.NOT_FOUND and what != "the metadata call":
                raise model_server.ModelUnavailable(f"model {model!r} is not loaded: {details}") from None
            if code in _INPUT_ERRORS:
                raise model_server.InputRejected(details) from None
            raise model_server.ModelServerError(
                f"model server refused {what} ({code.name}): {details}"
            ) from None
        finally:
            metrics.observe_model_server_call("grpc", time.perf_counter() - started, ok)

    def model_status(self, model: str, deadline: Deadline) -> list[VersionStatus]:
        request = self.protos.GetModelStatusRequest()
        request.model_spec.name = model
        response = self._rpc(self._status, request, deadline, model, "the status call")
        return [
            VersionStatus(
                version=entry.version,
                state=enum_name(self.protos.version_states, entry.state),
                error_code=enum_name(self.protos.error_codes, entry.status.error_code),
                error_message=entry.status.error_message,
            )
            for entry in response.model_version_status
        ]

    def image_signature(self, model: str, signature_name: str, deadline: Deadline) -> ImageSignature | None:
        request = self.protos.GetModelMetadataRequest()
        request.model_spec.name = model
        request.metadata_field.append("signature_def")
        try:
            response = self._rpc(self._metadata, request, deadline, model, "the metadata call")
        except model_server.ModelServerError as error:
            if "not found" in error.message.lower() or "NOT_FOUND" in error.message:
                return None
            raise
        packed = response.metadata["signature_def"]
        if packed.type_url != _SIGNATURE_DEF_MAP_TYPE:
            raise model_server.ModelServerError(f"model server sent unreadable metadata for {model!r}")
        signatures = self.protos.SignatureDefMap.FromString(packed.value)
        if signature_name not in signatures.signature_def:
            return None
        inputs = signatures.signature_def[signature_name].inputs
        input_dtypes = {
            name: enum_name(self.protos.tensor_dtypes, info.dtype) for name, info in inputs.items()
        }
        return model_server.image_signature_from(model, signature_name, input_dtypes)

    def predict_image(self, signature: ImageSignature, image: bytes, deadline: Deadline) -> Prediction:
        request = self.protos.PredictRequest()
        request.model_spec.name = signature.model
        request.model_spec.signature_name = signature.signature_name
        # A batch of one encoded image: shape [1], dtype string.
        request.inputs[signature.input_name].CopyFrom(self.protos.string_tensor([image]))
        started = time.perf_counter()
        response = self._rpc(self._predict, request, deadline, signature.model, "the prediction")
        latency_ms = (time.perf_counter() - started) * 1000
        class_id, probabilities = model_server.parse_outputs(signature.model, _first_row(response))
        # gRPC answers carry the version that served the request: no status call is needed.
        version = response.model_spec.version.value
        return Prediction(signature.model, version, class_id, probabilities, round(latency_ms, 2))
