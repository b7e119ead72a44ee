"""One call to TF Serving per prediction, and rollouts that fail no request.

Over gRPC the answer names the version that served it. Over REST the app predicts against a version
it names, learned from the status call and kept (MODEL_VERSION_TTL); when the server says that version
is gone it asks the status again, and when even that version is not where the prediction lands (hosts
on different versions behind a load balancer) the server's own policy answers.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from flask import Flask

from tests.support.waiting import wait_for
from tests.webapp.webtest_support import AppFactory, Digit, require_digits

pytestmark = pytest.mark.slow

# Each sender stops when told, and after this many requests at the latest.
MAX_REQUESTS_PER_SENDER = 1500
SENDERS = 3


def _post(app: Flask, png: bytes):
    return app.test_client().post("/api/predict", data={"image": (io.BytesIO(png), "d.png")})


def _count_calls(client, method_name: str) -> list[tuple]:
    """Replace client.<method_name> by a wrapper that records its arguments."""
    calls: list[tuple] = []
    original = getattr(client, method_name)

    def recording(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    setattr(client, method_name, recording)
    return calls


def test_rest_prediction_is_one_call_once_the_version_is_known(
    make_app: AppFactory, tfserving, digits: list[Digit]
) -> None:
    require_digits(tfserving)
    app = make_app(TFSERVING_REST_URL=tfserving.rest_url, MODEL_VERSION_TTL=600, STORE_UPLOADS=False)
    assert _post(app, digits[0].png).status_code == 200  # learns the signature and the version
    calls = _count_calls(app.extensions["tfserving_client"](), "_call")
    for digit in digits[:10]:
        assert _post(app, digit.png).status_code == 200
    methods = [call[0] for call in calls]
    assert methods == ["POST"] * 10, calls
    assert all("/versions/" in call[1] and call[1].endswith(":predict") for call in calls)


def test_grpc_prediction_is_one_call(make_app: AppFactory, tfserving, digits: list[Digit]) -> None:
    require_digits(tfserving)
    app = make_app(
        TFSERVING_TRANSPORT="grpc", TFSERVING_GRPC_TARGET=tfserving.grpc_target, STORE_UPLOADS=False
    )
    assert _post(app, digits[0].png).status_code == 200
    calls = _count_calls(app.extensions["tfserving_client"](), "_rpc")
    for digit in digits[:10]:
        assert _post(app, digit.png).json["version"] >= 1
    assert [call[4] for call in calls] == ["the prediction"] * 10


def _publish(source: Path, base: Path, version: int) -> None:
    """As a rollout does: copy beside, then one rename."""
    staging = base / f".staging-{version}"
    shutil.copytree(source, staging)
    staging.rename(base / str(version))


def _versions(rest_url: str) -> dict[int, str]:
    body = requests.get(f"{rest_url}/v1/models/digits", timeout=5).json()
    return {int(entry["version"]): entry["state"] for entry in body.get("model_version_status", [])}


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_a_rollout_under_load_fails_no_request(
    make_app: AppFactory, tfserving, start_standin, digits: list[Digit], tmp_path: Path, transport: str
) -> None:
    """Version 2 is published while clients keep sending; the server loads it and unloads version 1.
    The REST transport keeps its version for 10 minutes here, so only "the version is gone" (404) can
    make it move to version 2."""
    require_digits(tfserving)
    source = tfserving.models["digits"] / "1"
    base = tmp_path / "digits"
    base.mkdir()
    _publish(source, base, 1)
    server = start_standin(models={"digits": base}, flags=["--file_system_poll_wait_seconds=1"])
    app = make_app(
        TFSERVING_TRANSPORT=transport,
        TFSERVING_REST_URL=server.rest_url,
        TFSERVING_GRPC_TARGET=server.grpc_target,
        MODEL_VERSION_TTL=600,
        STORE_UPLOADS=False,
    )
    stop = threading.Event()
    failures: list[str] = []
    seen: list[list[int]] = [[] for _ in range(SENDERS)]

    def send(number: int) -> None:
        client = app.test_client()
        for count in range(MAX_REQUESTS_PER_SENDER):
            if stop.is_set():
                break
            png = digits[count % len(digits)].png
            response = client.post("/api/predict", data={"image": (io.BytesIO(png), "d.png")})
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.get_data(as_text=True)[:200]}")
            else:
                seen[number].append(response.json["version"])

    senders = [threading.Thread(target=send, args=(number,)) for number in range(SENDERS)]
    for sender in senders:
        sender.start()
    try:
        time.sleep(1.0)
        _publish(source, base, 2)
        # The status keeps an unloaded version, in state END.
        unloaded = {1: "END", 2: "AVAILABLE"}
        wait_for(lambda: _versions(server.rest_url) == unloaded, "version 1 unloaded", timeout=60)
        time.sleep(1.0)
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=60)
    answered = sum(len(versions) for versions in seen)
    print(f"\n{transport}: rollout 1 -> 2 under load: {answered} answered, {len(failures)} failed")
    assert failures == []
    for versions in seen:
        assert versions[0] == 1 and versions[-1] == 2, versions
        assert versions == sorted(versions), "a client saw version 1 again after version 2"


class _FleetHandler(BaseHTTPRequestHandler):
    """Two hosts behind a load balancer, as seen by one client: the status says version 3, but every
    prediction pinned to version 3 lands on the host that still has only version 2."""

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.calls.append(f"GET {self.path}")  # type: ignore[attr-defined]
        if self.path.endswith("/metadata"):
            inputs = {"image_bytes": {"dtype": "DT_STRING"}}
            signature = {"serving_default": {"inputs": inputs}}
            self._reply(200, {"metadata": {"signature_def": {"signature_def": signature}}})
        else:
            status = {"version": "3", "state": "AVAILABLE", "status": {"error_code": "OK"}}
            self._reply(200, {"model_version_status": [status]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.calls.append(f"POST {self.path}")  # type: ignore[attr-defined]
        if "/versions/" in self.path:
            self._reply(404, {"error": "Servable not found for request: Specific(digits, 3)"})
        else:
            self._reply(200, {"predictions": [{"probabilities": [0.1, 0.9], "class_id": 1}]})

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fleet() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FleetHandler)
    server.calls = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_hosts_on_different_versions_still_answer(
    make_app: AppFactory, fleet: ThreadingHTTPServer, digit_png: bytes
) -> None:
    url = f"http://127.0.0.1:{fleet.server_address[1]}"
    app = make_app(TFSERVING_REST_URL=url, STORE_UPLOADS=False)
    response = _post(app, digit_png)
    assert response.status_code == 200, response.json
    assert response.json["class_id"] == 1 and response.json["version"] == 3
    assert fleet.calls == [  # type: ignore[attr-defined]
        "GET /v1/models/digits/metadata",
        "GET /v1/models/digits",
        "POST /v1/models/digits/versions/3:predict",
        "GET /v1/models/digits",
        "POST /v1/models/digits/versions/3:predict",
        "POST /v1/models/digits:predict",
    ]
