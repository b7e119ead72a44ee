"""Helpers shared by the web front end's tests (imported by name: tests/webapp is on sys.path)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from flask import Flask
from PIL import Image

# make_app(**settings) -> a Flask app in test mode with its own upload folder
AppFactory = Callable[..., Flask]


def free_port() -> int:
    """A loopback port nobody listens on (the OS picked it and it was released again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Digit:
    label: int
    png: bytes


def held_out_digits() -> list[Digit]:
    # The same seeded, stratified split the training script uses (scripts/model_export/dataset.py):
    # these images were never seen in training.
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, test_images, _, test_labels = train_test_split(
        digits.images, digits.target, test_size=0.2, random_state=1234, stratify=digits.target
    )
    result = []
    for pixels, label in zip(test_images, test_labels, strict=True):
        eight_bit = np.clip(np.rint(pixels / 16.0 * 255.0), 0, 255).astype(np.uint8)
        # 8x enlarged with nearest neighbour: looks like a digit in the browser, and the graph's
        # area resize brings it back to exactly the original 8x8 pixels.
        image = Image.fromarray(eight_bit).resize((64, 64), Image.Resampling.NEAREST)
        result.append(Digit(label=int(label), png=png_bytes(image)))
    return result


GUNICORN_CONF = Path(__file__).resolve().parents[2] / "webapp" / "gunicorn.conf.py"


@dataclass(frozen=True)
class GunicornServer:
    url: str
    pid: int  # gunicorn's master process


@contextmanager
def gunicorn_server(env: dict[str, str], log_path: Path, workers: int = 1) -> Iterator[GunicornServer]:
    """The app under real gunicorn (the deployment's config file) on a free loopback port, once
    /healthz answers."""
    port = free_port()
    full_env = {
        **os.environ,
        "TFWEB_BIND": f"127.0.0.1:{port}",
        "TFWEB_WORKERS": str(workers),
        **env,
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(gunicorn), "-c", str(GUNICORN_CONF)], cwd="/", env=full_env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not answer within 60 s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield GunicornServer(url=url, pid=process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
