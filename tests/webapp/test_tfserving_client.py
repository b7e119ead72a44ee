"""How answers of the model server become the app's status codes, with real servers on loopback:
the stand-in for TF Serving's own errors, a small HTTP server for a broken or foreign one."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.webapp.webtest_support import AppFactory, Digit, require_digits
from tfserving_web.model_server import Deadline, ImageSignature, InputRejected
from tfserving_web.model_server.rest_client import RestClient

pytestmark = pytest.mark.slow


def test_input_the_server_rejects_is_400_with_its_message(tfserving, digits: list[Digit]) -> None:
    require_digits(tfserving)
    client = RestClient(tfserving.rest_url, connect_timeout=2, connect_retries=0)
    wrong = ImageSignature(model="digits", signature_name="no_such_signature", input_name="image_bytes")
    with pytest.raises(InputRejected) as caught:
        client.predict_image(wrong, digits[0].png, Deadline(10))
    assert caught.value.status_code == 400
    assert "no_such_signature" in caught.value.message  # TF Serving's own words


def test_grpc_input_the_server_rejects_is_400(tfserving, digits: list[Digit]) -> None:
    require_digits(tfserving)
    from tfserving_web.model_server.grpc_client import GrpcClient

    client = GrpcClient(tfserving.grpc_target, connect_timeout=2)
    try:
        wrong = ImageSignature(model="digits", signature_name="serving_default", input_name="pixels")
        with pytest.raises(InputRejected) as caught:
            client.predict_image(wrong, digits[0].png, Deadline(10))
        assert caught.value.status_code == 400
    finally:
        client.close()


class _BrokenHandler(BaseHTTPRequestHandler):
    """Answers every request with what the test put in `server.reply` (status, body bytes)."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body = self.server.reply  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def broken_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenHandler)
    server.reply = (500, b'{"error": "Internal: something broke"}')  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _predict(make_app: AppFactory, server: ThreadingHTTPServer, png: bytes):
    url = f"http://127.0.0.1:{server.server_address[1]}"
    client = make_app(TFSERVING_REST_URL=url).test_client()
    response = client.post("/api/predict", data={"image": (io.BytesIO(png), "d.png")})
    return response, client.get("/readyz")


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ((500, b'{"error": "Internal: something broke"}'), "something broke"),
        ((200, b"<html>not TF Serving</html>"), "unreadable"),
        ((200, json.dumps({"model_version_status": "nonsense"}).encode()), "unreadable"),
        ((429, b'{"error": "Resource exhausted"}'), "Resource exhausted"),
    ],
)
def test_other_model_server_failures_are_502(
    make_app: AppFactory, broken_server: ThreadingHTTPServer, digit_png: bytes, reply, message: str
) -> None:
    broken_server.reply = reply  # type: ignore[attr-defined]
    response, ready = _predict(make_app, broken_server, digit_png)
    assert response.status_code == 502, response.json
    assert message in response.json["error"]
    assert ready.status_code == 503
    assert message in ready.json["reason"]


@pytest.mark.parametrize(("status", "expected"), [(503, 503), (504, 504)])
def test_model_server_unavailable_and_deadline_answers_pass_through(
    make_app: AppFactory, broken_server: ThreadingHTTPServer, digit_png: bytes, status: int, expected: int
) -> None:
    broken_server.reply = (status, b'{"error": "overloaded"}')  # type: ignore[attr-defined]
    response, _ = _predict(make_app, broken_server, digit_png)
    assert response.status_code == expected
    assert "overloaded" in response.json["error"]
