"""Message classes for the two server config files whose schemas tensorflow-serving-api does not ship.

`MonitoringConfig` (tensorflow_serving/config/monitoring_config.proto) and `BatchingParameters`
(tensorflow_serving/servables/tensorflow/session_bundle_config.proto) are declared here field for field
(same package, names, numbers and types), so text_format accepts and rejects exactly what the real
server's parser does. The other schemas come from the tensorflow-serving-api package itself.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL = _F.LABEL_OPTIONAL
_REPEATED = _F.LABEL_REPEATED


def _field(name: str, number: int, kind: int, label: int = _OPTIONAL, type_name: str = "") -> _F:
    field = _F(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = type_name
    return field


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="tfserving_standin/extra_server_configs.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    prometheus = file_proto.message_type.add(name="PrometheusConfig")
    prometheus.field.extend(
        [
            _field("enable", 1, _F.TYPE_BOOL),
            _field("path", 2, _F.TYPE_STRING),
        ]
    )
    monitoring = file_proto.message_type.add(name="MonitoringConfig")
    monitoring.field.extend(
        [
            _field("prometheus_config", 1, _F.TYPE_MESSAGE, type_name=".tensorflow.serving.PrometheusConfig"),
        ]
    )
    batching = file_proto.message_type.add(name="BatchingParameters")
    int64_value = ".google.protobuf.Int64Value"
    batching.field.extend(
        [
            _field("max_batch_size", 1, _F.TYPE_MESSAGE, type_name=int64_value),
            _field("batch_timeout_micros", 2, _F.TYPE_MESSAGE, type_name=int64_value),
            _field("max_enqueued_batches", 3, _F.TYPE_MESSAGE, type_name=int64_value),
            _field("num_batch_threads", 4, _F.TYPE_MESSAGE, type_name=int64_value),
            _field("thread_pool_name", 5, _F.TYPE_MESSAGE, type_name=".google.protobuf.StringValue"),
            _field("allowed_batch_sizes", 6, _F.TYPE_INT64, label=_REPEATED),
            _field("pad_variable_length_inputs", 7, _F.TYPE_BOOL),
            _field(
                "enable_large_batch_splitting", 8, _F.TYPE_MESSAGE, type_name=".google.protobuf.BoolValue"
            ),
            _field("max_execution_batch_size", 9, _F.TYPE_MESSAGE, type_name=int64_value),
        ]
    )
    return file_proto


def _message_classes() -> tuple[type, type]:
    # A private pool: the real descriptors may be registered in the default pool by other packages.
    pool = descriptor_pool.DescriptorPool()
    wrappers_file = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers_file)
    pool.Add(wrappers_file)
    pool.Add(_build_file())
    monitoring = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
    )
    batching = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )
    return monitoring, batching


MonitoringConfig, BatchingParameters = _message_classes()
