"""gRPC contract through the official tensorflow-serving-api stubs (PredictionService, ModelService)."""

from __future__ import annotations

import grpc
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

TIMEOUT = 30


def float_tensor(values: list[float]) -> tensor_pb2.TensorProto:
    """Values in float_val, written out: tf.make_tensor_proto would pack them into tensor_content."""
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(values))]
        ),
        float_val=values,
    )


@pytest.fixture(scope="module")
def channel(endpoint):
    with grpc.insecure_channel(endpoint.grpc_target) as opened:
        grpc.channel_ready_future(opened).result(timeout=TIMEOUT)
        yield opened


def test_predict_half_plus_two(channel) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].CopyFrom(float_tensor([1.0, 2.0, 5.0]))
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=TIMEOUT)
    assert list(response.outputs["y"].float_val) == [2.5, 3.0, 4.5]
    assert response.model_spec.name == "half_plus_two"
    assert response.model_spec.version.value > 0


def predict_error(channel, model: str, input_name: str) -> grpc.RpcError:
    """The error that predicting [1.0] as input `input_name` of `model` fails with."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs[input_name].CopyFrom(float_tensor([1.0]))
    with pytest.raises(grpc.RpcError) as caught:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=TIMEOUT)
    return caught.value


def test_predict_unknown_model_is_not_found(channel) -> None:
    error = predict_error(channel, "no_such_model", "x")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "Servable not found for request: Latest(no_such_model)" in error.details()


def test_predict_wrong_input_name_is_invalid_argument(channel) -> None:
    assert predict_error(channel, "half_plus_two", "not_x").code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_model_metadata_has_the_signature_def_map(channel) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "half_plus_two"
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
        request, timeout=TIMEOUT
    )
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    assert signatures.signature_def["serving_default"].inputs["x"].dtype == types_pb2.DT_FLOAT


def test_get_model_status_reports_available_and_ok(channel) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "half_plus_two"
    response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=TIMEOUT)
    states = {status.state for status in response.model_version_status}
    assert get_model_status_pb2.ModelVersionStatus.AVAILABLE in states
    available = [
        s
        for s in response.model_version_status
        if s.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    ]
    assert available[0].status.error_code == 0


def test_get_model_status_of_unknown_model_is_not_found(channel) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "no_such_model"
    with pytest.raises(grpc.RpcError) as caught:
        model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "Could not find any versions of model no_such_model"
