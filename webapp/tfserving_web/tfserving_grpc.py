"""TF Serving over gRPC (TFWEB_TFSERVING_TRANSPORT=grpc).

Imported only when that transport is configured: the stubs in `tensorflow-serving-api` import
TensorFlow's protos, which load TensorFlow itself (seconds and hundreds of MB per worker), so this
module uses TensorFlow's own helpers for tensors and enum names. A plain install of tfserving-web leaves
that package out; its `grpc` extra (`tfserving-web[grpc]`) adds it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import grpc
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfserving_web import model_server
from tfserving_web.model_server import Deadline, ImageSignature, ModelServerClient, Prediction, VersionStatus

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

# Codes TF Serving uses when the request itself is wrong (REST maps them to 400 too).
_INPUT_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
}
VERSION_STATES = get_model_status_pb2.ModelVersionStatus.State
ERROR_CODES = error_codes_pb2.Code
TENSOR_DTYPES = types_pb2.DataType


def enum_name(enum: EnumTypeWrapper, number: int) -> str:
    """The name of an enum value as REST reports it ("AVAILABLE", "OK", "DT_STRING"); a number these
    stubs do not know yet (a newer server) stays a number."""
    try:
        return enum.Name(number)
    except ValueError:
        return str(number)


def _first_row(response: predict_pb2.PredictResponse) -> dict[str, Any]:
    """The outputs of the batch's one image as REST names them: `probabilities` (a list of floats)
    and, if the model returns one, `class_id`."""
    outputs: dict[str, Any] = {}
    if "probabilities" in response.outputs:
        outputs["probabilities"] = list(response.outputs["probabilities"].float_val)
    if "class_id" in response.outputs and response.outputs["class_id"].int64_val:
        outputs["class_id"] = int(response.outputs["class_id"].int64_val[0])
    return outputs


class GrpcClient(ModelServerClient):
    """One channel per worker process; gRPC reconnects by itself after the server comes back."""

    def __init__(self, target: str, connect_timeout: float) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self.channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)])
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def _timeout(self, deadline: Deadline) -> float:
        # gRPC has one deadline per call: the connection attempt comes out of the same budget.
        return self.connect_timeout + deadline.read_timeout()

    def _rpc(self, method: Any, request: Any, deadline: Deadline, model: str, what: str) -> Any:
        try:
            return method(request, timeout=self._timeout(deadline))
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
            if code == grpc.StatusCode.NOT_FOUND and what == "the status call":
                raise model_server.ModelUnavailable(f"model {model!r} is not loaded: {details}") from None
            if code in _INPUT_ERRORS:
                raise model_server.InputRejected(details) from None
            raise model_server.ModelServerError(
                f"model server refused {what} ({code.name}): {details}"
            ) from None

    def model_status(self, model: str, deadline: Deadline) -> list[VersionStatus]:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        response = self._rpc(self.models.GetModelStatus, request, deadline, model, "the status call")
        return [
            VersionStatus(
                version=entry.version,
                state=enum_name(VERSION_STATES, entry.state),
                error_code=enum_name(ERROR_CODES, entry.status.error_code),
                error_message=entry.status.error_message,
            )
            for entry in response.model_version_status
        ]

    def image_signature(self, model: str, signature_name: str, deadline: Deadline) -> ImageSignature | None:
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = model
        request.metadata_field.append("signature_def")
        try:
            response = self._rpc(
                self.predictions.GetModelMetadata, request, deadline, model, "the metadata call"
            )
        except model_server.ModelServerError as error:
            if "not found" in error.message.lower() or "NOT_FOUND" in error.message:
                return None
            raise
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        if signature_name not in signatures.signature_def:
            return None
        inputs = signatures.signature_def[signature_name].inputs
        input_dtypes = {name: enum_name(TENSOR_DTYPES, info.dtype) for name, info in inputs.items()}
        return model_server.image_signature_from(model, signature_name, input_dtypes)

    def predict_image(self, signature: ImageSignature, image: bytes, deadline: Deadline) -> Prediction:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = signature.model
        request.model_spec.signature_name = signature.signature_name
        # A batch of one encoded image: shape [1], dtype string.
        request.inputs[signature.input_name].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))
        started = time.perf_counter()
        response = self._rpc(self.predictions.Predict, request, deadline, signature.model, "the prediction")
        latency_ms = (time.perf_counter() - started) * 1000
        class_id, probabilities = model_server.parse_outputs(signature.model, _first_row(response))
        # gRPC answers carry the version that served the request.
        version = response.model_spec.version.value
        return Prediction(signature.model, version, class_id, probabilities, round(latency_ms, 2))
