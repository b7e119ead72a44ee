"""How the stand-in starts, or refuses to, compared with the real server's messages and exit status."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import requests

pytestmark = pytest.mark.usefixtures("standin_only")


def run_standin(*arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed stand-in, as the package's /usr/bin/tensorflow_model_server runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tfserving_standin", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_with_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "models.config"
    config.write_text(text)
    return run_standin(
        "--port=0", "--grpc_socket_path=" + str(tmp_path / "grpc.sock"), f"--model_config_file={config}"
    )


def test_version_says_it_is_a_stand_in() -> None:
    result = run_standin("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("TensorFlow ModelServer: ")
    assert "TensorFlow Library: " in result.stdout
    assert "stand-in" in result.stdout and "not a replacement" in result.stdout


def test_unparseable_config_exits_255_with_the_real_error(tmp_path) -> None:
    result = start_with_config(tmp_path, 'model_config_list {\n  config {\n    nam: "x"\n  }\n}\n')
    assert result.returncode == 255
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in result.stderr
    assert (
        f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: '{tmp_path}/models.config'"
        in (result.stdout)
    )
    assert "stand-in" in result.stderr.splitlines()[0]  # the first log line says what this is


def test_duplicate_model_name_is_rejected(tmp_path) -> None:
    entry = f'config {{ name: "twice" base_path: "{tmp_path}" model_platform: "tensorflow" }}'
    result = start_with_config(tmp_path, f"model_config_list {{ {entry} {entry} }}")
    assert result.returncode == 255
    assert "Illegal to list model twice multiple times in config list" in result.stdout


def test_relative_base_path_is_rejected(tmp_path) -> None:
    result = start_with_config(
        tmp_path,
        'model_config_list { config { name: "rel" base_path: "models/rel" model_platform: "tensorflow" } }',
    )
    assert result.returncode == 255
    assert "Expected model rel to have an absolute path or URI; got base_path()=models/rel" in result.stdout


def test_missing_base_path_fails_startup(tmp_path) -> None:
    missing = tmp_path / "nowhere"
    result = start_with_config(
        tmp_path,
        f'model_config_list {{ config {{ name: "m" base_path: "{missing}" model_platform: "tensorflow" }} }}',
    )
    assert result.returncode == 255
    assert f"Could not find base path {missing} for servable m" in result.stdout


def test_a_model_that_never_loads_fails_startup_after_the_retries(tmp_path) -> None:
    broken = tmp_path / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"not a protobuf")
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "broken" base_path: "{broken.parent}" '
        'model_platform: "tensorflow" } }'
    )
    result = run_standin(
        "--port=0",
        f"--grpc_socket_path={tmp_path}/s",
        f"--model_config_file={config}",
        "--max_num_load_retries=1",
        "--load_retry_interval_micros=0",
    )
    assert result.returncode == 255
    assert "Failed to start server. Error: UNKNOWN: 1 model(s) did not become available: " in result.stdout
    assert "{name: broken version: 1} due to error: DATA_LOSS: Can't parse" in result.stdout
    assert "Retrying load on servable version: {name: broken version: 1} retry: 1" in result.stderr


def test_missing_config_file_fails_startup(tmp_path) -> None:
    result = run_standin(
        "--port=0", f"--grpc_socket_path={tmp_path}/s", f"--model_config_file={tmp_path}/none"
    )
    assert result.returncode == 255
    assert "Failed to start server. Error: NOT_FOUND:" in result.stdout


def test_flag_value_that_does_not_parse_prints_usage_and_exits_255() -> None:
    result = run_standin("--port=eighty")
    assert result.returncode == 255
    assert "usage: tensorflow_model_server" in result.stdout
    assert "--rest_api_port=0" in result.stdout


def test_help_prints_usage_and_exits_255_like_tensorflow_flags() -> None:
    result = run_standin("--help")
    assert result.returncode == 255
    assert result.stdout.startswith("usage: tensorflow_model_server")


def test_neither_model_base_path_nor_config_file() -> None:
    result = run_standin("--port=0", "--grpc_socket_path=/tmp/unused.sock")
    assert result.returncode == 255
    assert (
        "Both server_options.model_base_path and server_options.model_config_file are empty!" in result.stdout
    )


def test_batching_file_parses_with_the_real_schema(tmp_path) -> None:
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 128 } batch_timeout_micros { value: 0 } no_such_field: 1")
    result = run_standin(
        "--port=0",
        f"--grpc_socket_path={tmp_path}/s",
        "--model_base_path=/tmp",
        "--enable_batching",
        f"--batching_parameters_file={batching}",
    )
    assert result.returncode == 255
    assert "Error parsing text-format tensorflow.serving.BatchingParameters" in result.stderr


def test_taken_rest_port_leaves_grpc_serving(start_standin, standin_test_models) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        server = start_standin(
            {"half_plus_two": standin_test_models / "half_plus_two"},
            flags=[f"--rest_api_port={taken}"],
            wait_available=False,
        )
        with grpc.insecure_channel(server.grpc_target) as channel:
            grpc.channel_ready_future(channel).result(timeout=120)
        assert f"Failed to start HTTP Server at localhost:{taken}" in server.log_text()
        assert server.process.poll() is None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{taken}/v1/models/half_plus_two", timeout=5)
