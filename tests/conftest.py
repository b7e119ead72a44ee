"""Shared pytest fixtures: a real TF Serving stand-in process on free loopback ports.

Fixtures
--------
start_standin (function scope) -- a factory::

    server = start_standin(models={"half_plus_two": Path(...)},   # name -> base path (holds 1/, 2/, ...)
                           config_text=None,                      # or a whole models.config text
                           flags=["--file_system_poll_wait_seconds=1"])

  runs ``python -m tfserving_standin`` (the installed package) as a real subprocess with
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
  warmup records), built by ``python -m tests.standin.build_test_models`` in a subprocess.

tfserving (session scope) -- one shared stand-in serving copies (in a tmp dir) of
  ``serving_model/digits`` and ``serving_model/half_plus_two``. A model missing from serving_model/
  (run ``make models-if-missing``) is left out for digits and replaced by a throwaway half_plus_two
  built by tests.standin.build_test_models. ``tfserving.models`` says what is served. Tests must not
  change its models; use ``start_standin`` for that.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.support import parallel
from tests.support.network import accepts, free_port
from tests.support.paths import REPO_ROOT, SERVING_MODEL_DIR
from tests.support.waiting import wait_for

STARTUP_TIMEOUT_SECONDS = 180.0


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(parallel.FolderSchedulingPlugin(), "tfstack-folder-scheduling")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    parallel.longest_folders_first(items)


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
        ready = self._grpc_open if self.rest_port == 0 else self._models_available
        try:
            wait_for(ready, "the stand-in to serve its models", timeout=timeout)
        except AssertionError as error:
            raise TimeoutError(f"{error}:\n{self.log_text()[-4000:]}") from None

    def _check_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"stand-in exited with status {self.process.returncode} "
                f"before its models were available:\n{self.log_text()[-4000:]}"
            )

    def _models_available(self) -> bool:
        self._check_running()
        statuses = [self.status_json(name) for name in self.model_names]
        return all(
            status and any(v.get("state") == "AVAILABLE" for v in status.get("model_version_status", []))
            for status in statuses
        )

    def _grpc_open(self) -> bool:
        self._check_running()
        return accepts("127.0.0.1", self.grpc_port)


def _command_line(flags: Sequence[str], config_path: Path) -> tuple[list[str], int, int]:
    """The stand-in's arguments and its REST and gRPC ports: free ones unless `flags` name them."""
    rest_port = free_port()
    grpc_port = next(port for port in (free_port() for _ in range(10)) if port != rest_port)
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
    return arguments, rest_port, grpc_port


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
    arguments, rest_port, grpc_port = _command_line(flags, config_path)
    log_path = workdir / f"standin-{rest_port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "tfserving_standin", *arguments],
            stdout=log_file,
            stderr=subprocess.STDOUT,
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


def _started_standins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., StandinServer]]:
    """Yields a start() function for the fixtures below, then stops every server it started."""
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

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def start_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., StandinServer]]:
    """Factory fixture: start_standin(models=None, config_text=None, flags=()) -> StandinServer."""
    yield from _started_standins(tmp_path_factory)


@pytest.fixture(scope="session")
def start_session_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., StandinServer]]:
    """Like start_standin, but the servers live until the end of the session (for sharing)."""
    yield from _started_standins(tmp_path_factory)


def _build_test_models(output: Path) -> Path:
    """Runs tests/standin/build_test_models.py as a module (TensorFlow stays out of this process)."""
    subprocess.run(
        [sys.executable, "-m", "tests.standin.build_test_models", str(output)],
        check=True,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return output


@pytest.fixture(scope="session")
def standin_test_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small SavedModels built once per session (see tests/standin/build_test_models.py)."""
    return _build_test_models(tmp_path_factory.mktemp("standin-test-models"))


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
        built = _build_test_models(tmp_path_factory.mktemp("throwaway-half-plus-two"))
        shutil.copytree(built / "half_plus_two", models_dir / "half_plus_two")
        models["half_plus_two"] = models_dir / "half_plus_two"
    server = launch_standin(tmp_path_factory.mktemp("tfserving"), models)
    yield server
    server.stop()
