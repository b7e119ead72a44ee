"""Reading the server's text-format config files and validating a ModelServerConfig.

Error texts follow the real server: util/proto_util.h (ParseProtoTextFile), protobuf's text_format
error collector, and model_servers/server_core.cc (ValidateModelConfigList and friends).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from google.protobuf import text_format
from google.protobuf.message import Message
from tensorflow_serving.config import model_server_config_pb2

from tfserving_standin.errors import Code, ServingError, invalid_argument
from tfserving_standin.extra_schemas import BatchingParameters, MonitoringConfig

log = logging.getLogger("tensorflow_serving.util.proto_util")

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig


def parse_text_file(path: str, message: Message) -> Message:
    """Fills `message` from a text-format file, failing the way ParseProtoTextFile does."""
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise ServingError(Code.NOT_FOUND, f"{path}; No such file or directory") from None
    except IsADirectoryError:
        raise ServingError(Code.FAILED_PRECONDITION, f"{path}; Is a directory") from None
    except PermissionError:
        raise ServingError(Code.PERMISSION_DENIED, f"{path}; Permission denied") from None
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        # The real server's libprotobuf logs this line to stderr before returning the status.
        location = f"{error.GetLine()}:{error.GetColumn()}" if error.GetLine() else ""
        detail = str(error)
        if location and detail.startswith(location):
            detail = detail[len(location) :].lstrip(" :")
        log.error(
            "Error parsing text-format %s: %s: %s", message.DESCRIPTOR.full_name, location or "0:0", detail
        )
        raise invalid_argument(f"Invalid protobuf file: '{path}'") from None
    return message


def read_model_server_config(path: str) -> model_server_config_pb2.ModelServerConfig:
    return parse_text_file(path, ModelServerConfig())


def read_monitoring_config(path: str) -> Message:
    return parse_text_file(path, MonitoringConfig())


def read_batching_parameters(path: str) -> Message:
    return parse_text_file(path, BatchingParameters())


def single_model_config(model_name: str, model_base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """What --model_name/--model_base_path turn into (server.cc BuildSingleModelConfig)."""
    config = ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = model_name
    model.base_path = model_base_path
    model.model_platform = "tensorflow"
    return config


def _is_relative_path(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.scheme and parts.netloc:
        return False
    if parts.scheme and "://" in uri:
        return False
    return not os.path.isabs(uri)


def platform_of(model: model_server_config_pb2.ModelConfig) -> str:
    if model.model_type != model_server_config_pb2.MODEL_TYPE_UNSPECIFIED:
        if model.model_platform:
            raise invalid_argument(
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                f"ModelServerConfig::model_platform, model name is {model.name}"
            )
        if model.model_type == model_server_config_pb2.TENSORFLOW:
            return "tensorflow"
        raise invalid_argument(f"ModelServerConfig::model_type choice {model.model_type} not supported.")
    if not model.model_platform:
        raise invalid_argument(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            f"ModelServerConfig::model_platform, model name is {model.name}"
        )
    return model.model_platform


def validate_model_config_list(
    new_config: model_server_config_pb2.ModelServerConfig,
    old_config: model_server_config_pb2.ModelServerConfig | None,
) -> None:
    """Rejects what ServerCore::ReloadConfig rejects before touching any model."""
    if old_config is not None and old_config.WhichOneof("config") not in (None, "model_config_list"):
        raise ServingError(
            Code.FAILED_PRECONDITION,
            "Cannot transition to requested config. It is only legal to transition from one "
            "ModelConfigList to another.",
        )
    kind = new_config.WhichOneof("config")
    if kind == "custom_model_config":
        raise ServingError(Code.UNIMPLEMENTED, "ModelServer does not yet support custom model config.")
    if kind is None:
        return
    seen: set[str] = set()
    for model in new_config.model_config_list.config:
        if model.name in seen:
            raise invalid_argument(f"Illegal to list model {model.name} multiple times in config list")
        seen.add(model.name)
    for model in new_config.model_config_list.config:
        if _is_relative_path(model.base_path):
            raise invalid_argument(
                f"Expected model {model.name} to have an absolute path or URI; "
                f"got base_path()={model.base_path}"
            )
    old_platforms: dict[str, str] = {}
    if old_config is not None:
        for model in old_config.model_config_list.config:
            old_platforms[model.name] = platform_of(model)
    for model in new_config.model_config_list.config:
        platform = platform_of(model)
        if platform != "tensorflow":
            raise invalid_argument(f"Model {model.name} requests unsupported platform {platform}")
        old_platform = old_platforms.get(model.name)
        if old_platform is not None and old_platform != platform:
            raise invalid_argument(
                f"Illegal to change a model's platform. For model {model.name} platform was {old_platform} "
                f"and new platform requested is {platform}"
            )
