"""Start-up sequence of the stand-in, in the real server's order (model_servers/main.cc, server.cc).

flags -> config files -> load every configured model and wait until it is AVAILABLE -> gRPC port ->
REST port (a REST bind failure is only logged) -> serve until killed. TensorFlow is imported only
after the config files parsed, so a bad config fails in well under a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tensorflow_serving.config import model_server_config_pb2

from tfserving_standin import STANDIN_NOTICE, STANDIN_VERSION, config_files, flags
from tfserving_standin.errors import Code, ServingError, invalid_argument

if TYPE_CHECKING:  # both import TensorFlow, which start-up loads only after the cheap checks
    import grpc

    from tfserving_standin.model_manager import ModelManager

log = logging.getLogger("tensorflow_serving.model_servers.server")

EXIT_FAILURE = 255  # main() returns -1


class _GlogFormatter(logging.Formatter):
    """Lines shaped like the real server's: `2026-01-01 12:00:00.123456: I file] message`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%d %H:%M:%S")
        return (
            f"{stamp}.{int(record.msecs * 1000):06d}: {record.levelname[0]} {record.name}] "
            f"{record.getMessage()}"
            + ("\n" + self.formatException(record.exc_info) if record.exc_info else "")
        )


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_GlogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def version_text() -> str:
    try:
        tf_version = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tf_version = "unknown"
    return (
        f"TensorFlow ModelServer: {STANDIN_VERSION}-standin\n"
        f"TensorFlow Library: {tf_version}\n"
        f"{STANDIN_NOTICE}\n"
    )


def _fail(error: ServingError) -> int:
    sys.stderr.flush()
    sys.stdout.write(f"Failed to start server. Error: {error}\n")
    sys.stdout.flush()
    return EXIT_FAILURE


def _check_options(options: flags.ParsedFlags) -> None:
    """The argument checks at the top of Server::BuildAndStart."""
    if options.port == 0 and not options.grpc_socket_path:
        raise invalid_argument(
            "At least one of server_options.grpc_port or server_options.grpc_socket_path must be set."
        )
    if options.use_alts_credentials and options.ssl_config_file:
        raise invalid_argument("Either use_alts_credentials must be false or ssl_config_file must be empty.")
    if not options.model_base_path and not options.model_config_file:
        raise invalid_argument(
            "Both server_options.model_base_path and server_options.model_config_file are empty!"
        )
    if options.ssl_config_file or options.use_alts_credentials or options.platform_config_file:
        raise ServingError(
            Code.UNIMPLEMENTED,
            "--ssl_config_file, --use_alts_credentials and --platform_config_file are not supported by the "
            "tfserving-stack stand-in",
        )


def _parallelism(options: flags.ParsedFlags) -> tuple[int, int]:
    intra, inter, both = (
        options.tensorflow_intra_op_parallelism,
        options.tensorflow_inter_op_parallelism,
        options.tensorflow_session_parallelism,
    )
    if intra > 0 and inter > 0 and both > 0:
        raise invalid_argument(
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) "
            "separately. You cannot configure all."
        )
    if intra > 0 or inter > 0:
        return intra, inter
    return both, both


@dataclasses.dataclass
class RunningServer:
    """What must stay referenced while serving (threads hold the rest)."""

    manager: object
    grpc_server: object

    def wait_for_termination(self) -> None:
        """Like the real server: runs until a signal ends the process."""
        threading.Event().wait()


def build_and_start(options: flags.ParsedFlags) -> RunningServer:
    """Server::BuildAndStart: start-up in the real server's order; raises ServingError on failure."""
    _check_options(options)
    model_server_config = _model_server_config(options)
    # ServerCore validates this after TensorFlow is up; doing it first answers a bad config in a blink.
    config_files.validate_model_config_list(model_server_config, None)
    _check_batching(options)
    manager = _start_manager(options, *_parallelism(options))
    manager.reload_config(model_server_config)
    if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
        _start_config_polling(manager, options.model_config_file, options.model_config_file_poll_wait_seconds)
    grpc_server = _start_grpc(manager, options)
    if options.rest_api_port:
        if options.rest_api_port != options.port:
            _start_rest(manager, options, _prometheus_path(options))
        else:
            log.error(
                "server_options.http_port cannot be same as grpc_port. Please use a different port for "
                "HTTP/REST API. Skipped exporting HTTP/REST API."
            )
    return RunningServer(manager=manager, grpc_server=grpc_server)


def _model_server_config(options: flags.ParsedFlags) -> model_server_config_pb2.ModelServerConfig:
    """--model_config_file, or the one model that --model_name/--model_base_path describe."""
    if options.model_config_file:
        return config_files.read_model_server_config(options.model_config_file)
    log.info(
        "Building single TensorFlow model file config:  model_name: %s model_base_path: %s",
        options.model_name,
        options.model_base_path,
    )
    return config_files.single_model_config(options.model_name, options.model_base_path)


def _check_batching(options: flags.ParsedFlags) -> None:
    """The batching file parses with the real schema; batching itself is not emulated."""
    if options.enable_batching:
        if options.batching_parameters_file:
            config_files.read_batching_parameters(options.batching_parameters_file)
        log.info("Batching is enabled; the stand-in runs each request on its own (no batching scheduler).")
    elif options.batching_parameters_file:
        raise invalid_argument(
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true."
        )


def _start_manager(options: flags.ParsedFlags, intra: int, inter: int) -> ModelManager:
    """The model manager, polling the base paths; TensorFlow is imported here, after the cheap checks."""
    from tfserving_standin import model_loading
    from tfserving_standin.model_manager import ManagerOptions, ModelManager

    loading = model_loading.ModelLoading(
        tags=tuple(t for t in options.saved_model_tags.split(",") if t),
        intra_op_parallelism=intra,
        inter_op_parallelism=inter,
        enable_warmup=options.enable_model_warmup,
        warmup_iterations=options.num_request_iterations_for_warmup,
    )
    manager = ModelManager(
        ManagerOptions(
            file_system_poll_wait_seconds=options.file_system_poll_wait_seconds,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_micros=options.load_retry_interval_micros,
            allow_version_labels_for_unavailable_models=options.allow_version_labels_for_unavailable_models,
        ),
        load=loading.load,
        unload=loading.unload,
    )
    manager.start_polling()
    return manager


def _start_grpc(manager: ModelManager, options: flags.ParsedFlags) -> grpc.Server:
    from tfserving_standin import grpc_services

    grpc_server = grpc_services.build_server(
        manager,
        options.port,
        options.grpc_socket_path,
        options.grpc_max_threads,
        options.grpc_channel_arguments,
    )
    if options.port:
        log.info("Running gRPC ModelServer at 0.0.0.0:%d ...", options.port)
    if options.grpc_socket_path:
        log.info("Running gRPC ModelServer at UNIX socket %s ...", options.grpc_socket_path)
    return grpc_server


def _prometheus_path(options: flags.ParsedFlags) -> str | None:
    """Where the monitoring config serves Prometheus metrics; None when it does not."""
    if not options.monitoring_config_file:
        return None
    monitoring = config_files.read_monitoring_config(options.monitoring_config_file)
    if not monitoring.prometheus_config.enable:
        return None
    return monitoring.prometheus_config.path or "/monitoring/prometheus/metrics"


def _start_rest(manager, options: flags.ParsedFlags, prometheus_path: str | None) -> None:
    from waitress.server import create_server

    from tfserving_standin.rest_app import create_app

    app = create_app(
        manager, options.rest_api_timeout_in_ms, options.rest_api_enable_cors_support, prometheus_path
    )
    address = f"localhost:{options.rest_api_port}"
    try:
        http_server = create_server(
            app,
            host="0.0.0.0",
            port=options.rest_api_port,
            threads=max(options.rest_api_num_threads, 1),
            ident="tfserving-stack-standin",
            clear_untrusted_proxy_headers=True,
        )
    except OSError as error:
        log.error("Failed to start HTTP Server at %s (%s)", address, error.strerror)
        return
    threading.Thread(target=http_server.run, name="rest_api", daemon=True).start()
    log.info("Exporting HTTP/REST API at:%s ...", address)


def _start_config_polling(manager, path: str, interval: int) -> None:
    def poll_config() -> None:
        while True:
            threading.Event().wait(interval)
            try:
                config = config_files.read_model_server_config(path)
            except ServingError as error:
                log.error("Failed to read ModelServerConfig file: %s", error.message)
                continue
            try:
                manager.reload_config(config)
            except ServingError as error:
                log.error("PollFilesystemAndReloadConfig failed to ReloadConfig: %s", error.message)

    threading.Thread(target=poll_config, name="Server_fs_model_config_poll_thread", daemon=True).start()


def main(argv: Sequence[str]) -> int:
    try:
        options = flags.parse(argv)
    except flags.FlagValueError as error:
        if str(error):
            sys.stderr.write(f"{error}\n")
        sys.stdout.write(flags.usage())
        return EXIT_FAILURE
    if options.version:
        sys.stdout.write(version_text())
        return 0
    _setup_logging()
    log.warning("%s (version %s, pid %d)", STANDIN_NOTICE, STANDIN_VERSION, os.getpid())
    flags.report_unknown(options)
    try:
        running = build_and_start(options)
    except ServingError as error:
        code = _fail(error)
        os._exit(code)  # threads (pollers, gRPC) must not keep a failed server alive
    with contextlib.suppress(KeyboardInterrupt):
        running.wait_for_termination()
    return 0
