"""gRPC on --port: tensorflow.serving.PredictionService and ModelService, via the official stubs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from typing import NoReturn, TypeVar

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import Message
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfserving_standin import metrics, servable_calls
from tfserving_standin.errors import Code, ServingError, invalid_argument
from tfserving_standin.model_manager import ModelManager

log = logging.getLogger("tensorflow_serving.model_servers.server")
Response = TypeVar("Response", bound=Message)


def _abort(context: grpc.ServicerContext, error: ServingError) -> NoReturn:
    context.abort(error.grpc_code, error.message)
    raise AssertionError("unreachable: context.abort raises")


def _answer(context: grpc.ServicerContext, handler: Callable[[], Response]) -> Response:
    """The handler's response, or its ServingError as the call's gRPC status."""
    try:
        return handler()
    except ServingError as error:
        _abort(context, error)


def _unimplemented(context: grpc.ServicerContext, method: str) -> NoReturn:
    _abort(
        context,
        ServingError(Code.UNIMPLEMENTED, f"{method} is not implemented by the tfserving-stack stand-in"),
    )


def _inputs_from_protos(request: predict_pb2.PredictRequest) -> dict[str, np.ndarray]:
    inputs = {}
    for alias, proto in request.inputs.items():
        try:
            inputs[alias] = tf.make_ndarray(proto)
        except (TypeError, ValueError) as error:
            raise invalid_argument(f"Cannot parse tensor from proto: {error}") from None
    return inputs


# Tensor::AsProtoField's typed repeated field per dtype.
_VALUE_FIELDS = {
    "float32": "float_val",
    "float64": "double_val",
    "int32": "int_val",
    "int16": "int_val",
    "int8": "int_val",
    "uint8": "int_val",
    "uint16": "int_val",
    "int64": "int64_val",
    "bool": "bool_val",
    "uint32": "uint32_val",
    "uint64": "uint64_val",
}


def tensor_proto_as_fields(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Tensor::AsProtoField: values in the typed repeated field (float_val, ...), as the real server.

    tf.make_tensor_proto writes strings to string_val as the real server does, but packs numbers into
    tensor_content, which clients reading float_val would see empty; numbers are written here.
    """
    field = _VALUE_FIELDS.get(array.dtype.name)
    if field is None:  # strings; half, bfloat16, complex...: packed bytes are still a valid TensorProto
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(
        dtype=tf.dtypes.as_dtype(array.dtype).as_datatype_enum,
        tensor_shape=tf.TensorShape(array.shape).as_proto(),
    )
    getattr(proto, field).extend(array.reshape(-1).tolist())
    return proto


class _ServesModels:
    """What both services answer from: the model manager."""

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager


class PredictionService(_ServesModels, prediction_service_pb2_grpc.PredictionServiceServicer):
    def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        start = time.monotonic()
        status = "UNKNOWN"  # what gRPC answers for an unexpected exception
        try:
            timeout = context.time_remaining()
            timeout_in_ms = int(timeout * 1000) if timeout is not None and timeout < 1e9 else 0
            version, signature, outputs = servable_calls.predict(
                self.manager,
                request.model_spec,
                _inputs_from_protos(request),
                list(request.output_filter),
                timeout_in_ms,
            )
            response = predict_pb2.PredictResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.version.value = version
            response.model_spec.signature_name = signature
            for alias, array in outputs.items():
                response.outputs[alias].CopyFrom(tensor_proto_as_fields(array))
            status = "OK"
            return response
        except ServingError as error:
            status = error.code.name
            _abort(context, error)
        finally:
            micros = (time.monotonic() - start) * 1e6
            metrics.record_request(request.model_spec.name, status, "Predict", "GRPC", micros)

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return _answer(context, lambda: servable_calls.model_metadata(self.manager, request))

    def Classify(self, request, context):
        _unimplemented(context, "Classify")

    def Regress(self, request, context):
        _unimplemented(context, "Regress")

    def MultiInference(self, request, context):
        _unimplemented(context, "MultiInference")


class ModelService(_ServesModels, model_service_pb2_grpc.ModelServiceServicer):
    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        return _answer(context, lambda: servable_calls.model_status(self.manager, request))

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        """ModelServiceImpl::HandleReloadConfigRequest: status in the response and as the gRPC status."""
        response = model_management_pb2.ReloadConfigResponse()
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise invalid_argument(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                    "Only ModelConfigList is "
                    "currently supported"
                )
            for index, config in enumerate(request.config.model_config_list.config):
                log.info(
                    "\nConfig entry\n\tindex : %d\n\tpath : %s\n\tname : %s\n\tplatform : %s",
                    index,
                    config.base_path,
                    config.name,
                    config.model_platform,
                )
            self.manager.reload_config(request.config)
        except ServingError as error:
            log.error("ReloadConfig failed: %s", error.message)
            response.status.error_code = int(error.code)
            response.status.error_message = error.message
            context.set_code(error.grpc_code)
            context.set_details(error.message)
            return response
        response.status.error_code = int(Code.OK)
        return response


def build_server(
    manager: ModelManager, port: int, socket_path: str, max_threads: int, channel_arguments: str
) -> grpc.Server:
    """Binds 0.0.0.0:port (all interfaces, as the real server) and/or a UNIX socket; raises on failure."""
    options: list[tuple[str, int | str]] = [
        ("grpc.max_receive_message_length", 2**31 - 1),
        ("grpc.max_send_message_length", 2**31 - 1),
        ("grpc.so_reuseport", 0),
    ]
    for argument in filter(None, channel_arguments.split(",")):
        key, _, value = argument.partition("=")
        options.append((key, int(value) if value.lstrip("-").isdigit() else value))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max(max_threads, 1)), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(manager), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    try:
        if port and server.add_insecure_port(f"0.0.0.0:{port}") == 0:
            raise RuntimeError("bind failed")
        if socket_path and server.add_insecure_port(f"unix:{socket_path}") == 0:
            raise RuntimeError("bind failed")
    except RuntimeError:
        raise invalid_argument("Failed to BuildAndStart gRPC server") from None
    server.start()
    return server
