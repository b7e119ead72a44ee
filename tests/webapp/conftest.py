"""Fixtures for the web front end's tests: an isolated app, a port with nothing listening, real
held-out digit images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.network import free_port
from tests.webapp.webtest_support import AppFactory, Digit, held_out_digits
from tfserving_web import create_app


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TFWEB_* setting of the machine leaks into a test; state goes into the test's own folder."""
    for name in list(os.environ):
        if name.startswith("TFWEB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TFWEB_INSTANCE_PATH", str(tmp_path / "instance"))


@pytest.fixture
def dead_rest_url() -> str:
    """A model server address where the connection is refused: the 'server down' case."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def make_app(tmp_path: Path) -> AppFactory:
    def build(**settings: Any) -> Flask:
        config = {"TESTING": True, "UPLOAD_FOLDER": str(tmp_path / "uploads"), **settings}
        return create_app(config)

    return build


@pytest.fixture
def offline_client(make_app: AppFactory, dead_rest_url: str) -> FlaskClient:
    """A client whose model server is down: any request that reached TF Serving would answer 503."""
    return make_app(TFSERVING_REST_URL=dead_rest_url, CONNECT_RETRIES=0).test_client()


@pytest.fixture(scope="session")
def digits() -> list[Digit]:
    """Held-out digits (never seen in training) as 64x64 PNGs with their labels."""
    return held_out_digits()


@pytest.fixture(scope="session")
def digit_png(digits: list[Digit]) -> bytes:
    return digits[0].png
