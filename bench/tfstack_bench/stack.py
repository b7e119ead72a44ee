"""A stack the benchmark starts itself on loopback: the TF Serving stand-in serving the model, and the
web front end under gunicorn with the deployment's own config module, once per variant (transport,
workers x threads) to compare.

The stand-in, like TF Serving, listens on all interfaces; `cli` therefore runs the whole benchmark in a
private network namespace that has only loopback, when it can (root and `unshare`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 30.0


class StackError(Exception):
    """A process of the stack did not start; the message says which and ends with its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def models_config(models: dict[str, Path]) -> str:
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{base.resolve()}"\n'
        '    model_platform: "tensorflow"\n  }\n'
        for name, base in models.items()
    )
    return "model_config_list {\n" + entries + "}\n"


def http_json(url: str, timeout: float = 5.0) -> tuple[int, object]:
    """(status, decoded JSON or None); (0, None) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None


def available_versions(rest_url: str, model: str) -> set[int]:
    status, body = http_json(f"{rest_url}/v1/models/{model}")
    if status != 200 or not isinstance(body, dict):
        return set()
    return {
        int(entry["version"])
        for entry in body.get("model_version_status", [])
        if entry.get("state") == "AVAILABLE"
    }


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_process(
    name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None
) -> Process:
    with log_path.open("wb") as log:
        popen = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd="/")
    return Process(name, popen, log_path)


def wait_until(process: Process, ready: Callable[[], bool], what: str) -> None:
    """Until `ready()`; a process that exits, never gets ready or is interrupted is stopped."""
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not ready():
            if process.popen.poll() is not None:
                raise StackError(f"{process.name} exited ({process.popen.returncode}):\n{process.log_tail()}")
            if time.monotonic() > deadline:
                raise StackError(
                    f"{process.name}: no {what} after {STARTUP_TIMEOUT_SECONDS:g} s:\n{process.log_tail()}"
                )
            time.sleep(0.1)
    except BaseException:
        process.stop()
        raise


@dataclass
class Standin:
    process: Process
    rest_url: str
    grpc_target: str
    config_path: Path


def start_standin(
    workdir: Path, models: dict[str, Path], flags: tuple[str, ...] = (), name: str = "stand-in"
) -> Standin:
    """`python -m tfserving_standin` on free ports, once every model has an AVAILABLE version."""
    workdir.mkdir(parents=True, exist_ok=True)
    rest_port, grpc_port = free_port(), free_port()
    config_path = workdir / f"{name}.models.config"
    config_path.write_text(models_config(models))
    command = [
        sys.executable,
        "-m",
        "tfserving_standin",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_config_file={config_path}",
        *flags,
    ]
    process = start_process(name, command, workdir / f"{name}.log")
    standin = Standin(process, f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}", config_path)
    wait_until(
        process,
        lambda: all(available_versions(standin.rest_url, model) for model in models),
        "AVAILABLE model",
    )
    return standin


@dataclass(frozen=True)
class WebVariant:
    """One gunicorn of the web front end: its transport to TF Serving, its workers x threads, and
    environment variables added to the deployment's (`label` names them in the path)."""

    transport: str
    workers: int
    threads: int
    label: str = ""
    env: tuple[tuple[str, str], ...] = ()

    def name(self, with_shape: bool) -> str:
        """web-rest, web-rest-2x4 when several shapes are compared, web-rest-LABEL for added variables."""
        shape = f"-{self.workers}x{self.threads}" if with_shape else ""
        label = f"-{self.label}" if self.label else ""
        return f"web-{self.transport}{shape}{label}"


@dataclass
class WebServer:
    variant: WebVariant
    process: Process
    url: str


def web_settings(instance_path: Path, transport: str, standin: Standin, model: str) -> dict[str, str]:
    """The web front end's TFWEB_* settings that point it at the stand-in, whether gunicorn runs it
    (start_web) or the bench builds it in its own process (app_cost)."""
    return {
        "TFWEB_INSTANCE_PATH": str(instance_path),
        "TFWEB_TFSERVING_TRANSPORT": transport,
        "TFWEB_TFSERVING_REST_URL": standin.rest_url,
        "TFWEB_TFSERVING_GRPC_TARGET": standin.grpc_target,
        "TFWEB_MODEL_NAME": model,
    }


def start_web(
    workdir: Path, variant: WebVariant, standin: Standin, model: str, name: str, web_source: Path | None
) -> WebServer:
    """gunicorn -c python:tfserving_web.gunicorn_conf on a free loopback port, once /readyz is 200."""
    port = free_port()
    env = {
        **os.environ,
        **web_settings(workdir / name, variant.transport, standin, model),
        "TFWEB_BIND": f"127.0.0.1:{port}",
        "TFWEB_WORKERS": str(variant.workers),
        "TFWEB_THREADS": str(variant.threads),
        # As the webapp role deploys it: no access log (/metrics counts the requests).
        "TFWEB_ACCESS_LOG": "false",
        **dict(variant.env),
    }
    if web_source:
        # Another checkout's tfserving_web ahead of the installed one (before/after comparisons).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(web_source), env.get("PYTHONPATH", "")]))
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = start_process(
        name, [str(gunicorn), "-c", "python:tfserving_web.gunicorn_conf"], workdir / f"{name}.log", env
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(process, lambda: http_json(f"{url}/readyz")[0] == 200, "200 from /readyz")
    return WebServer(variant, process, url)


@dataclass(frozen=True)
class GunicornShape:
    """What of the deployment's gunicorn config shapes the hop: worker class, workers x threads, and
    the folder of the workers' heartbeat files (None: gunicorn's default, the temporary folder)."""

    worker_class: str
    workers: int
    threads: int
    worker_tmp_dir: str | None = None


def _answers_post(url: str) -> bool:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=b"", method="POST"), timeout=5
        ) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class FloorServer:
    process: Process
    url: str


def start_floor(
    workdir: Path, app: str, shape: GunicornShape, name: str, settings: dict[str, str] | None = None
) -> FloorServer:
    """gunicorn serving `tfstack_bench.floor_apps:<app>` on a free loopback port, shaped like the
    deployment's, with `settings` in its environment, once POST /api/predict answers 200 (every floor
    app answers it)."""
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        str(gunicorn),
        f"--worker-class={shape.worker_class}",
        f"--workers={shape.workers}",
        f"--threads={shape.threads}",
        *([f"--worker-tmp-dir={shape.worker_tmp_dir}"] if shape.worker_tmp_dir else []),
        f"--bind=127.0.0.1:{port}",
        # No access log is gunicorn's default; no control socket, whose default path is one for
        # every gunicorn of the user, so two of them would take it from each other.
        "--no-control-socket",
        f"tfstack_bench.floor_apps:{app}",
    ]
    process = start_process(name, command, workdir / f"{name}.log", {**os.environ, **(settings or {})})
    url = f"http://127.0.0.1:{port}"
    wait_until(process, lambda: _answers_post(f"{url}/api/predict"), "200 from POST /api/predict")
    return FloorServer(process, url)


class OwnStack:
    """The stand-in and one gunicorn per web variant; stops them all on exit."""

    def __init__(
        self,
        workdir: Path,
        model: str,
        model_base: Path,
        variants: list[WebVariant],
        web_source: Path | None = None,
        progress: Callable[[str], None] = print,
    ) -> None:
        self.workdir = workdir
        self.model = model
        self.model_base = model_base
        self.variants = variants
        self.web_source = web_source
        self.progress = progress
        self._exit = ExitStack()
        self.standin: Standin | None = None
        self.web: dict[str, WebServer] = {}

    def __enter__(self) -> OwnStack:
        try:
            self.progress(f"starting the TF Serving stand-in for {self.model} ({self.model_base})")
            self.standin = start_standin(self.workdir, {self.model: self.model_base})
            self._exit.callback(self.standin.process.stop)
            with_shape = len({(v.workers, v.threads) for v in self.variants}) > 1
            for variant in self.variants:
                name = variant.name(with_shape)
                self.progress(f"starting gunicorn for {name}")
                server = start_web(self.workdir, variant, self.standin, self.model, name, self.web_source)
                self._exit.callback(server.process.stop)
                self.web[name] = server
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit.close()
