"""Helpers shared by the web front end's tests: held-out digits, the app under real gunicorn."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from PIL import Image

from model_export.dataset import encode_png, load_digits_split
from tests.support.network import free_port
from tests.support.waiting import wait_for

# make_app(**settings) -> a Flask app in test mode with its own upload folder
AppFactory = Callable[..., Flask]

# The deployment's gunicorn settings, read as a module of the installed package.
GUNICORN_CONFIG = "python:tfserving_web.gunicorn_conf"
GUNICORN = Path(sys.executable).parent / "gunicorn"
DIGIT_SIDE = 64


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Digit:
    label: int
    png: bytes


def held_out_digits() -> list[Digit]:
    """The training's own held-out split (model_export.dataset), so these images were never seen in
    training, as 64x64 PNGs: enlarged with nearest neighbour they look like digits in the browser, and
    the graph's area resize brings them back to exactly the original 8x8 pixels."""
    split = load_digits_split()
    digits = []
    for pixels, label in zip(split.test_pixels, split.test_labels, strict=True):
        eight_by_eight = Image.open(io.BytesIO(encode_png(pixels)))
        enlarged = eight_by_eight.resize((DIGIT_SIDE, DIGIT_SIDE), Image.Resampling.NEAREST)
        digits.append(Digit(label=int(label), png=png_bytes(enlarged)))
    return digits


def require_digits(server) -> None:
    """Fail (not skip) when the model server has no digits model: the models are part of the build."""
    if "digits" not in server.model_names:
        pytest.fail("serving_model/digits is missing: run `make models-if-missing`")


@dataclass(frozen=True)
class GunicornServer:
    url: str
    pid: int  # gunicorn's master process
    process: subprocess.Popen[bytes]

    def worker_pids(self) -> set[int]:
        """gunicorn's workers (the master's children; its upload writers are the workers' children)."""
        return {int(pid) for pid in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()}


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    def healthy_or_exited() -> bool:
        return process.poll() is not None or requests.get(f"{url}/healthz", timeout=2).status_code == 200

    try:
        wait_for(healthy_or_exited, f"gunicorn at {url}", timeout=60, tolerate=(requests.ConnectionError,))
    except AssertionError as error:
        raise AssertionError(f"{error}:\n{log_path.read_text()}") from None
    if process.poll() is not None:
        raise AssertionError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")


def gunicorn_env(rest_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a gunicorn against the stand-in at `rest_url`, its state under `tmp_path`."""
    return {"TFWEB_TFSERVING_REST_URL": rest_url, "TFWEB_INSTANCE_PATH": str(tmp_path / "state"), **extra}


@contextmanager
def gunicorn_server(env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[GunicornServer]:
    """The app under real gunicorn (the deployment's config module) on a free loopback port, once
    /healthz answers."""
    port = free_port()
    full_env = {**os.environ, "TFWEB_BIND": f"127.0.0.1:{port}", "TFWEB_WORKERS": str(workers), **env}
    with log_path.open("wb") as log:
        # From another directory, as systemd runs it: the installed package is found, not the checkout.
        process = subprocess.Popen(
            [str(GUNICORN), "-c", GUNICORN_CONFIG], cwd="/", env=full_env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, url, log_path)
        yield GunicornServer(url=url, pid=process.pid, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
