"""The TF Serving messages the gRPC transport sends and reads, without TensorFlow.

`tensorflow-serving-api`'s generated modules import TensorFlow's own (`tensorflow.core...`), which runs
TensorFlow's package init: seconds and hundreds of MB per worker, for a few message classes. Instead
this package ships `tfserving_protos.binpb`, a FileDescriptorSet of exactly the .proto files needed
(written by `python -m tfserving_web.model_server.protos_build` from the installed tensorflow-serving-api;
a test fails when the two differ), and builds the classes from it with protobuf's own
descriptor pool and message factory. Only `protobuf` is needed; the wire format is the same.

The pool is private (not protobuf's default pool), so this works next to TensorFlow's generated
modules in one process (the tests, the benchmark) without "duplicate file" conflicts.
"""

from __future__ import annotations

import functools
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message

DESCRIPTOR_SET_PATH = Path(__file__).with_name("tfserving_protos.binpb")

# gRPC method paths: "/<package>.<Service>/<Method>" from prediction_service.proto and
# model_service.proto (checked against the installed services by the tests).
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
GET_MODEL_METADATA_METHOD = "/tensorflow.serving.PredictionService/GetModelMetadata"
GET_MODEL_STATUS_METHOD = "/tensorflow.serving.ModelService/GetModelStatus"

# TensorProto.dtype for a string tensor (types.proto: DT_STRING = 7).
DT_STRING = 7


class TfServingProtos:
    """The message classes and enums, built once from the descriptor set (see `load`)."""

    def __init__(self, path: Path = DESCRIPTOR_SET_PATH) -> None:
        files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
        self.pool = descriptor_pool.DescriptorPool()
        for file in files.file:  # dependencies come first in the set
            self.pool.Add(file)
        self.PredictRequest = self.message_class("tensorflow.serving.PredictRequest")
        self.PredictResponse = self.message_class("tensorflow.serving.PredictResponse")
        self.GetModelMetadataRequest = self.message_class("tensorflow.serving.GetModelMetadataRequest")
        self.GetModelMetadataResponse = self.message_class("tensorflow.serving.GetModelMetadataResponse")
        self.SignatureDefMap = self.message_class("tensorflow.serving.SignatureDefMap")
        self.GetModelStatusRequest = self.message_class("tensorflow.serving.GetModelStatusRequest")
        self.GetModelStatusResponse = self.message_class("tensorflow.serving.GetModelStatusResponse")
        self.TensorProto = self.message_class("tensorflow.TensorProto")
        self.version_states = self.pool.FindEnumTypeByName("tensorflow.serving.ModelVersionStatus.State")
        self.error_codes = self.pool.FindEnumTypeByName("tensorflow.error.Code")
        self.tensor_dtypes = self.pool.FindEnumTypeByName("tensorflow.DataType")

    def message_class(self, full_name: str) -> type[Message]:
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def string_tensor(self, values: list[bytes]) -> Message:
        """A 1-D DT_STRING TensorProto holding `values` (a batch of encoded images), built field by
        field as tf.make_tensor_proto would, without numpy."""
        tensor = self.TensorProto()
        tensor.dtype = DT_STRING
        tensor.tensor_shape.dim.add().size = len(values)
        tensor.string_val.extend(values)
        return tensor


@functools.cache
def load_protos() -> TfServingProtos:
    """The shipped descriptors, read on first use (about 0.1 s), then shared by the process."""
    return TfServingProtos()


def enum_name(enum: EnumDescriptor, number: int) -> str:
    """The name of an enum value as REST reports it ("AVAILABLE", "OK", "DT_STRING"); a number these
    descriptors do not know yet (a newer server) stays a number."""
    value = enum.values_by_number.get(number)
    return value.name if value is not None else str(number)
