"""Shared pytest fixtures: a real TF Serving stand-in process on free loopback ports.

Fixtures
--------
start_standin (function scope) -- a factory::

    server = start_standin(models={"half_plus_two": Path(...)},   # name -> base path (holds 1/, 2/, ...)
                           config_text=None,                      # or a whole models.config text
                           flags=["--file_system_poll_wait_seconds=1"])

  runs ``python -m tfserving_standin`` (PYTHONPATH=standin) as a real subprocess with
  ``--port`` / ``--rest_api_port`` on free ephemeral ports and ``--model_config_file`` pointing at a
  models.config it writes (from ``models``, or ``config_text`` verbatim), waits until REST answers and
  every configured model has an AVAILABLE version, and stops it at teardown. Flags given in ``flags``
  override the defaults (``--port=``/``--rest_api_port=`` included). ``wait_available=False`` returns
  as soon as the process is started (for servers expected to fail or to wait for versions).

  The returned ``StandinServer`` has ``.rest_url`` ("http://127.0.0.1:PORT"), ``.grpc_target``
  ("127.0.0.1:PORT"), ``.rest_port``, ``.grpc_port``, ``.config_path``, ``.models``, ``.process``,
  ``.stop()`` (SIGTERM, then SIGKILL), ``.kill()`` (SIGKILL), ``.pause()`` / ``.resume()``
  (SIGSTOP / SIGCONT), ``.wait_until_available(timeout)`` and ``.log_text()`` (stdout + stderr so far).

start_session_standin (session scope) -- the same factory, for servers shared by several tests.

standin_test_models (session scope) -- directory of small test SavedModels (half_plus_two, a second
  half_plus_two version source, echo_bytes with a `_bytes` output and a two-input signature, a model with
  warmup records), built by tests/standin/build_test_models.py in a subprocess.

tfserving (session scope) -- one shared stand-in serving copies (in a tmp dir) of
  ``serving_model/digits`` and ``serving_model/half_plus_two``. A model missing from serving_model/
  (run ``make models-if-missing``) is left out for digits and replaced by a throwaway half_plus_two
  built by tests/standin/build_test_models.py. ``tfserving.models`` says what is served. Tests must not
  change its models; use ``start_standin`` for that.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
STANDIN_SOURCE = REPO_ROOT / "standin"
SERVING_MODEL_DIR = REPO_ROOT / "serving_model"
TEST_MODEL_BUILDER = REPO_ROOT / "tests" / "standin" / "build_test_models.py"
STARTUP_TIMEOUT_SECONDS = 180.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tfserving", "TF Serving contract tests (tests/standin)")
    group.addoption(
        "--tfserving-rest",
        metavar="URL",
        default=None,
        help="run the contract tests against this REST endpoint instead of a stand-in",
    )
    group.addoption(
        "--tfserving-grpc",
        metavar="HOST:PORT",
        default=None,
        help="gRPC endpoint of the same server as --tfserving-rest",
    )


def free_port() -> int:
    """A currently free TCP port on loopback (the kernel's choice of ephemeral port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def models_config_text(models: dict[str, Path], extra: str = "") -> str:
    """A models.config listing each model (absolute base path, platform tensorflow)."""
    entries = []
    for name, base_path in models.items():
        entries.append(
            "  config {\n"
            f'    name: "{name}"\n'
            f'    base_path: "{Path(base_path).resolve()}"\n'
            '    model_platform: "tensorflow"\n'
            f"{extra}"
            "  }\n"
        )
    return "model_config_list {\n" + "".join(entries) + "}\n"


def _configured_model_names(config_text: str) -> list[str]:
    # tensorflow_serving.config does not import TensorFlow, so this stays cheap in the test process.
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(config_text, config)
    except text_format.ParseError:
        return []
    return [model.name for model in config.model_config_list.config]


@dataclasses.dataclass
class StandinServer:
    """A running `python -m tfserving_standin` process."""

    process: subprocess.Popen[bytes]
    rest_port: int
    grpc_port: int
    config_path: Path
    log_path: Path
    models: dict[str, Path]
    model_names: list[str]

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def status_json(self, model_name: str) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.rest_url}/v1/models/{model_name}", timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return None

    def wait_until_available(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Until REST answers and every configured model has an AVAILABLE version.

        With REST off (--rest_api_port=0), until the gRPC port accepts: the server opens its ports
        only once its models are available.
        """
        deadline = time.monotonic() + timeout
        if self.rest_port == 0:
            self._wait_for_grpc(deadline)
            return
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"stand-in exited with status {self.process.returncode} "
                    "before its models were available:\n"
                    f"{self.log_text()[-4000:]}"
                )
            statuses = [self.status_json(name) for name in self.model_names]
            if all(
                status and any(v.get("state") == "AVAILABLE" for v in status.get("model_version_status", []))
                for status in statuses
            ):
                return
            time.sleep(0.2)
        raise TimeoutError(f"stand-in not ready within {timeout:.0f} s:\n{self.log_text()[-4000:]}")

    def _wait_for_grpc(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"stand-in exited with status {self.process.returncode}:\n{self.log_text()[-4000:]}"
                )
            if _grpc_port_accepts(self.grpc_port):
                return
            time.sleep(0.2)
        raise TimeoutError(f"stand-in gRPC port not open in time:\n{self.log_text()[-4000:]}")


def _grpc_port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def launch_standin(
    workdir: Path,
    models: dict[str, Path] | None = None,
    config_text: str | None = None,
    flags: Sequence[str] = (),
    wait_available: bool = True,
) -> StandinServer:
    """Starts a stand-in process (see the module docstring); the caller stops it."""
    workdir.mkdir(parents=True, exist_ok=True)
    models = dict(models or {})
    config_path = workdir / "models.config"
    text = config_text if config_text is not None else models_config_text(models)
    config_path.write_text(text)
    rest_port, grpc_port = free_port(), free_port()
    while grpc_port == rest_port:
        grpc_port = free_port()
    given = {flag.split("=", 1)[0] for flag in flags}
    defaults = {
        "--port": f"--port={grpc_port}",
        "--rest_api_port": f"--rest_api_port={rest_port}",
        "--model_config_file": f"--model_config_file={config_path}",
    }
    arguments = [value for name, value in defaults.items() if name not in given] + list(flags)
    for flag in flags:
        name, _, value = flag.partition("=")
        if name == "--port" and value.isdigit():
            grpc_port = int(value)
        if name == "--rest_api_port" and value.isdigit():
            rest_port = int(value)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(STANDIN_SOURCE), environment.get("PYTHONPATH", "")])
    )
    log_path = workdir / f"standin-{rest_port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "tfserving_standin", *arguments],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=workdir,
        )
    server = StandinServer(
        process=process,
        rest_port=rest_port,
        grpc_port=grpc_port,
        config_path=config_path,
        log_path=log_path,
        models=models,
        model_names=_configured_model_names(text),
    )
    if wait_available:
        try:
            server.wait_until_available()
        except BaseException:
            server.stop()
            raise
    return server


def _standin_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Callable[..., StandinServer], list[StandinServer]]:
    """A start() function and the list of servers it started, for the fixtures below to stop."""
    servers: list[StandinServer] = []

    def start(
        models: dict[str, Path] | None = None,
        config_text: str | None = None,
        flags: Sequence[str] = (),
        wait_available: bool = True,
    ) -> StandinServer:
        server = launch_standin(
            tmp_path_factory.mktemp("standin"), models, config_text, flags, wait_available
        )
        servers.append(server)
        return server

    return start, servers


@pytest.fixture
def start_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., StandinServer]]:
    """Factory fixture: start_standin(models=None, config_text=None, flags=()) -> StandinServer."""
    start, servers = _standin_factory(tmp_path_factory)
    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def start_session_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., StandinServer]]:
    """Like start_standin, but the servers live until the end of the session (for sharing)."""
    start, servers = _standin_factory(tmp_path_factory)
    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def standin_test_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small SavedModels built once per session (see tests/standin/build_test_models.py)."""
    output = tmp_path_factory.mktemp("standin-test-models")
    subprocess.run(
        [sys.executable, str(TEST_MODEL_BUILDER), str(output)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return output


def _has_versions(base_path: Path) -> bool:
    return base_path.is_dir() and any(child.name.isdigit() for child in base_path.iterdir())


@pytest.fixture(scope="session")
def tfserving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinServer]:
    """One stand-in for the session, serving copies of serving_model/{digits,half_plus_two}."""
    models_dir = tmp_path_factory.mktemp("tfserving-models")
    models: dict[str, Path] = {}
    for name in ("digits", "half_plus_two"):
        source = SERVING_MODEL_DIR / name
        if _has_versions(source):
            shutil.copytree(source, models_dir / name, ignore=shutil.ignore_patterns(".*"))
            models[name] = models_dir / name
    if "half_plus_two" not in models:
        built = tmp_path_factory.mktemp("throwaway-half-plus-two")
        subprocess.run(
            [sys.executable, str(TEST_MODEL_BUILDER), str(built)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        shutil.copytree(built / "half_plus_two", models_dir / "half_plus_two")
        models["half_plus_two"] = models_dir / "half_plus_two"
    server = launch_standin(tmp_path_factory.mktemp("tfserving"), models)
    yield server
    server.stop()
