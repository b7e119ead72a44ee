"""Multipart uploads as browsers send them (a new boundary each time) and broken ones."""

from __future__ import annotations

import uuid

from flask.testing import FlaskClient

from tests.webapp.webtest_support import AppFactory


def browser_body(png: bytes, boundary: str) -> bytes:
    """What a browser's form post sends: CRLF line ends, the file and the model field."""
    parts = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="d.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + png
    parts += f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n\r\n'.encode()
    return parts + f"--{boundary}--\r\n".encode()


def post_raw(client: FlaskClient, body: bytes, boundary: str):
    return client.post("/api/predict", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def test_fields_are_read_whatever_the_boundary(offline_client: FlaskClient, digit_png: bytes) -> None:
    """The image reaches the model server (503: it is down) under every new boundary; a body whose
    parts cannot be found is refused with 400 and one line."""
    for _ in range(3):
        boundary = uuid.uuid4().hex
        assert post_raw(offline_client, browser_body(digit_png, boundary), boundary).status_code == 503
    garbage = post_raw(offline_client, b"no parts here", uuid.uuid4().hex)
    assert garbage.status_code == 400 and "multipart field" in garbage.json["error"]
    no_boundary = offline_client.post("/api/predict", data=b"x", content_type="multipart/form-data")
    assert no_boundary.status_code == 400 and "multipart field" in no_boundary.json["error"]


def test_page_reads_the_same_fields(make_app: AppFactory, dead_rest_url: str, digit_png: bytes) -> None:
    client = make_app(TFSERVING_REST_URL=dead_rest_url, CONNECT_RETRIES=0).test_client()
    boundary = uuid.uuid4().hex
    response = client.post(
        "/", data=browser_body(digit_png, boundary), content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 503 and "unreachable" in response.get_data(as_text=True)
