"""The real server's command-line flags and its tensorflow::Flags parsing rules.

Rules reproduced (model_servers/main.cc, tensorflow/core/util/command_line_flags.cc):
- only `--name=value` is recognised; booleans also accept a bare `--name`;
- a recognised flag with a value that does not parse, or `--help`, prints the usage and exits 255;
- anything else is left over: the server prints `unknown argument: <first one>` and the usage,
  and starts anyway.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    name: str
    kind: str  # "int32", "int64", "bool", "string", "float" as in the real usage text
    default: Any
    help: str


_CPU_COUNT = os.cpu_count() or 1

FLAG_SPECS: tuple[FlagSpec, ...] = (
    FlagSpec("port", "int32", 8500, "TCP port to listen on for gRPC/HTTP API. Disabled if port set to zero."),
    FlagSpec(
        "grpc_socket_path",
        "string",
        "",
        "If non-empty, listen to a UNIX socket for gRPC API on the given path.",
    ),
    FlagSpec(
        "rest_api_port",
        "int32",
        0,
        "Port to listen on for HTTP/REST API. If set to zero HTTP/REST API will "
        "not be exported. This port must be different than the one specified in --port.",
    ),
    FlagSpec(
        "rest_api_num_threads", "int32", 4 * _CPU_COUNT, "Number of threads for HTTP/REST API processing."
    ),
    FlagSpec("rest_api_timeout_in_ms", "int32", 30000, "Timeout for HTTP/REST API calls."),
    FlagSpec("rest_api_enable_cors_support", "bool", False, "Enable CORS headers in response"),
    FlagSpec("enable_batching", "bool", False, "enable batching"),
    FlagSpec(
        "allow_version_labels_for_unavailable_models",
        "bool",
        False,
        "If true, allows assigning unused version labels to models that are not available yet.",
    ),
    FlagSpec(
        "batching_parameters_file",
        "string",
        "",
        "If non-empty, read an ascii BatchingParameters protobuf "
        "from the supplied file name and use the contained values instead of the defaults.",
    ),
    FlagSpec(
        "enable_per_model_batching_parameters", "bool", False, "Enables model specific batching params."
    ),
    FlagSpec(
        "model_config_file",
        "string",
        "",
        "If non-empty, read an ascii ModelServerConfig protobuf from the "
        "supplied file name, and serve the models in that file. (If used, --model_name, --model_base_path "
        "are ignored.)",
    ),
    FlagSpec(
        "model_config_file_poll_wait_seconds",
        "int32",
        0,
        "Interval in seconds between each poll of the "
        "filesystem for model_config_file. If unset or set to zero, poll will be done exactly once and not "
        "periodically.",
    ),
    FlagSpec("model_name", "string", "default", "name of model (ignored if --model_config_file flag is set)"),
    FlagSpec(
        "model_base_path",
        "string",
        "",
        "path to export (ignored if --model_config_file flag is set, otherwise required)",
    ),
    FlagSpec(
        "num_load_threads", "int32", 0, "The number of threads in the thread-pool used to load servables."
    ),
    FlagSpec(
        "num_unload_threads", "int32", 0, "The number of threads in the thread-pool used to unload servables."
    ),
    FlagSpec(
        "max_num_load_retries",
        "int32",
        5,
        "maximum number of times it retries loading a model after the "
        "first failure, before giving up. If set to 0, a load is attempted only once. Default: 5",
    ),
    FlagSpec(
        "load_retry_interval_micros",
        "int64",
        60 * 1000 * 1000,
        "The interval, in microseconds, between "
        "each servable load retry. If set negative, it doesn't wait. Default: 1 minute",
    ),
    FlagSpec(
        "file_system_poll_wait_seconds",
        "int32",
        1,
        "Interval in seconds between each poll of the "
        "filesystem for new model version. If set to zero poll will be exactly done once and not "
        "periodically. Setting this to negative value will disable polling entirely.",
    ),
    FlagSpec(
        "flush_filesystem_caches",
        "bool",
        True,
        "If true (the default), filesystem caches will be flushed after the initial load of all servables.",
    ),
    FlagSpec(
        "tensorflow_session_parallelism",
        "int64",
        0,
        "Number of threads to use for running a Tensorflow session. Auto-configured by default.",
    ),
    FlagSpec(
        "tensorflow_session_config_file",
        "string",
        "",
        "If non-empty, read an ascii TensorFlow Session ConfigProto protobuf from the supplied file name.",
    ),
    FlagSpec(
        "tensorflow_intra_op_parallelism",
        "int64",
        0,
        "Number of threads to use to parallelize the "
        "execution of an individual op. Auto-configured by default.",
    ),
    FlagSpec(
        "tensorflow_inter_op_parallelism",
        "int64",
        0,
        "Controls the number of operators that can be executed simultaneously. Auto-configured by default.",
    ),
    FlagSpec("use_alts_credentials", "bool", False, "Use Google ALTS credentials"),
    FlagSpec(
        "ssl_config_file",
        "string",
        "",
        "If non-empty, read an ascii SSLConfig protobuf from the supplied "
        "file name and set up a secure gRPC channel",
    ),
    FlagSpec(
        "platform_config_file",
        "string",
        "",
        "If non-empty, read an ascii PlatformConfigMap protobuf from "
        "the supplied file name, and use that platform config instead of the Tensorflow platform.",
    ),
    FlagSpec(
        "per_process_gpu_memory_fraction",
        "float",
        0.0,
        "Fraction that each process occupies of the GPU memory space.",
    ),
    FlagSpec(
        "saved_model_tags",
        "string",
        "serve",
        "Comma-separated set of tags corresponding to the meta graph def to load from SavedModel.",
    ),
    FlagSpec(
        "grpc_channel_arguments",
        "string",
        "",
        "A comma separated list of arguments to be passed to the "
        "grpc server. (e.g. grpc.max_connection_age_ms=2000)",
    ),
    FlagSpec("grpc_max_threads", "int32", 4 * _CPU_COUNT, "Max grpc server threads to handle grpc messages."),
    FlagSpec(
        "enable_model_warmup",
        "bool",
        True,
        "Enables model warmup, which triggers lazy initializations "
        "(such as TF optimizations) at load time, to reduce first request latency.",
    ),
    FlagSpec(
        "num_request_iterations_for_warmup",
        "int32",
        1,
        "Number of times a request is iterated during warmup replay. This value is used only if > 0.",
    ),
    FlagSpec("version", "bool", False, "Display version"),
    FlagSpec(
        "monitoring_config_file",
        "string",
        "",
        "If non-empty, read an ascii MonitoringConfig protobuf from the supplied file name",
    ),
    FlagSpec(
        "remove_unused_fields_from_bundle_metagraph",
        "bool",
        True,
        "Removes unused fields from MetaGraphDef proto message to save memory.",
    ),
    FlagSpec("prefer_tflite_model", "bool", False, "EXPERIMENTAL; CAN BE REMOVED ANYTIME!"),
    FlagSpec("num_tflite_pools", "int32", _CPU_COUNT, "EXPERIMENTAL; CAN BE REMOVED ANYTIME!"),
    FlagSpec("num_tflite_interpreters_per_pool", "int32", 1, "EXPERIMENTAL; CAN BE REMOVED ANYTIME!"),
    FlagSpec(
        "enable_signature_method_name_check", "bool", False, "Enable method_name check for SignatureDef."
    ),
    FlagSpec("xla_cpu_compilation_enabled", "bool", False, "EXPERIMENTAL; CAN BE REMOVED ANYTIME!"),
    FlagSpec("xla_gpu_compilation_enabled", "bool", False, "EXPERIMENTAL; CAN BE REMOVED ANYTIME!"),
    FlagSpec("enable_profiler", "bool", True, "Enable profiler service."),
    FlagSpec(
        "thread_pool_factory_config_file",
        "string",
        "",
        "If non-empty, read an ascii ThreadPoolConfig protobuf from the supplied file name.",
    ),
    FlagSpec("mixed_precision", "string", "", "specify mixed_precision mode"),
    FlagSpec("skip_initialize_tpu", "bool", False, "Whether to skip auto initializing TPU."),
    FlagSpec(
        "enable_grpc_healthcheck_service", "bool", False, "Enable the standard gRPC healthcheck service."
    ),
    FlagSpec(
        "enable_serialization_as_tensor_content",
        "bool",
        False,
        "Enable serialization of predict response as tensor content.",
    ),
)

_SPECS_BY_NAME = {spec.name: spec for spec in FLAG_SPECS}
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclasses.dataclass
class ParsedFlags:
    values: dict[str, Any]
    unknown: list[str]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


class FlagValueError(Exception):
    """A known flag with a value the real parser would refuse."""


def _format_default(spec: FlagSpec) -> str:
    if spec.kind == "bool":
        return "true" if spec.default else "false"
    if spec.kind == "string":
        return f'"{spec.default}"'
    return str(spec.default)


def usage(program: str = "tensorflow_model_server") -> str:
    """The usage text, laid out like tensorflow::Flags::Usage."""
    lines = [f"usage: {program}", "Flags:"]
    for spec in FLAG_SPECS:
        flag = f"--{spec.name}={_format_default(spec)}"
        lines.append(f"\t{flag:<35}\t{spec.kind}\t{spec.help}")
    return "\n".join(lines) + "\n"


def _parse_value(spec: FlagSpec, text: str) -> Any:
    if spec.kind == "bool":
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise FlagValueError(f"Couldn't interpret value {text} for flag {spec.name}.")
    if spec.kind in _INT_RANGES:
        low, high = _INT_RANGES[spec.kind]
        try:
            number = int(text.strip(), 10)
        except ValueError:
            raise FlagValueError(f"Couldn't interpret value {text} for flag {spec.name}.") from None
        if not low <= number <= high:
            raise FlagValueError(f"Couldn't interpret value {text} for flag {spec.name}.")
        return number
    if spec.kind == "float":
        try:
            return float(text)
        except ValueError:
            raise FlagValueError(f"Couldn't interpret value {text} for flag {spec.name}.") from None
    return text


def parse(argv: Sequence[str]) -> ParsedFlags:
    """Parses argv[1:]; raises FlagValueError when the real server would print usage and exit."""
    values = {spec.name: spec.default for spec in FLAG_SPECS}
    unknown: list[str] = []
    errors: list[str] = []
    arguments = list(argv[1:])
    for position, arg in enumerate(arguments):
        if arg == "--":  # everything after it is passed through as left-over arguments
            unknown.extend(arguments[position:])
            break
        if not arg.startswith("--"):
            unknown.append(arg)
            continue
        name, has_value, text = arg[2:].partition("=")
        spec = _SPECS_BY_NAME.get(name)
        if spec is None or (not has_value and spec.kind != "bool"):
            unknown.append(arg)
            continue
        if not has_value:
            values[name] = True
            continue
        try:
            values[name] = _parse_value(spec, text)
        except FlagValueError as error:
            errors.append(str(error))
    if errors:
        raise FlagValueError("\n".join(errors))
    if unknown and unknown[0] == "--help":
        raise FlagValueError("")  # Flags::Parse fails on a leading --help: usage, exit 255
    return ParsedFlags(values=values, unknown=unknown)


def report_unknown(flags: ParsedFlags) -> None:
    """Prints what the real server prints for left-over arguments (to stdout), then carries on."""
    if flags.unknown:
        sys.stdout.write(f"unknown argument: {flags.unknown[0]}\n{usage()}")
        sys.stdout.flush()
