"""Bad uploads get a 4xx before TF Serving is asked.

The app under test points at a port with nothing listening: had it called the model server, it would
answer 503, so a 400 also shows that validation came first.
"""

from __future__ import annotations

import base64
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from PIL import Image

from tests.webapp.webtest_support import AppFactory, png_bytes
from tfserving_web.uploads.images import BadImage, check_image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 20000) -> bytes:
    """A valid side x side 1-bit black PNG: ~50 KB on disk, `side`² pixels once decoded."""
    row = b"\x00" + bytes((side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    compressed = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", compressed) + _chunk(b"IEND", b"")


def encoded(image_format: str, size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (250, 250, 250)).save(buffer, format=image_format)
    return buffer.getvalue()


def post_file(client: FlaskClient, data: bytes, filename: str = "upload.png", path: str = "/api/predict"):
    return client.post(path, data={"image": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return bomb_png()


BAD_FILES = {
    "text named .png": (b"this is not an image, whatever its name says\n", "not an image"),
    "empty file": (b"", "empty"),
    "truncated PNG": (png_bytes(Image.new("L", (64, 64), 128))[:60], "damaged or truncated"),
    "TIFF (valid, not accepted)": (encoded("TIFF"), "not an image in one of the accepted formats"),
    "PDF": (b"%PDF-1.4\n1 0 obj << >> endobj\n", "not an image"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_is_400_with_a_clear_message(offline_client: FlaskClient, case: str) -> None:
    data, message = BAD_FILES[case]
    response = post_file(offline_client, data)
    assert response.status_code == 400, response.json
    assert message in response.json["error"]


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_file_as_json_is_400(offline_client: FlaskClient, case: str) -> None:
    data, message = BAD_FILES[case]
    response = offline_client.post("/api/predict", json={"image_b64": base64.b64encode(data).decode()})
    assert response.status_code == 400
    assert message in response.json["error"]


def test_truncated_png_with_intact_header_is_400(offline_client: FlaskClient) -> None:
    # Cut inside the pixel data: the header reads fine, only the full decode finds the damage.
    whole = png_bytes(Image.effect_noise((256, 256), 80))
    response = post_file(offline_client, whole[: len(whole) // 2])
    assert response.status_code == 400
    assert "truncated" in response.json["error"]


def test_decompression_bomb_is_400(offline_client: FlaskClient, bomb: bytes) -> None:
    assert len(bomb) < 200_000
    response = post_file(offline_client, bomb)
    assert response.status_code == 400
    assert "pixels" in response.json["error"]


def test_decompression_bomb_is_refused_without_decoding_it(bomb: bytes, tmp_path: Path) -> None:
    """Decoding 20000x20000 would need >= 400 MB; the check must refuse it from the header alone."""
    bomb_file = tmp_path / "bomb.png"
    bomb_file.write_bytes(bomb)
    code = f"""
import resource, sys
from pathlib import Path
from tfserving_web.uploads.images import BadImage, check_image, refuse_decompression_bombs
refuse_decompression_bombs()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    check_image(Path({str(bomb_file)!r}).read_bytes(), max_pixels=4096 * 4096)
except BadImage as error:
    print("refused:", error)
print("grew_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "refused:" in result.stdout
    grew_kib = int(result.stdout.split("grew_kib")[1])
    print(f"peak memory growth while refusing the bomb: {grew_kib} KiB")
    assert grew_kib < 100 * 1024


def test_more_pixels_than_configured_is_400(make_app: AppFactory, dead_rest_url: str) -> None:
    client = make_app(TFSERVING_REST_URL=dead_rest_url, MAX_IMAGE_PIXELS=100 * 100).test_client()
    response = post_file(client, encoded("PNG", (101, 100)))
    assert response.status_code == 400
    assert "101x100" in response.json["error"]
    # At the limit it passes validation and reaches the (absent) model server.
    assert post_file(client, encoded("PNG", (100, 100))).status_code == 503


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_accepted_formats_pass_validation(offline_client: FlaskClient, image_format: str) -> None:
    # The next step is TF Serving, which is down here: 503 means the image was accepted.
    response = post_file(offline_client, encoded(image_format), filename="image.bin")
    assert response.status_code == 503, response.json


def test_upload_over_the_size_limit_is_413_and_nothing_is_stored(
    make_app: AppFactory, dead_rest_url: str, tmp_path: Path
) -> None:
    app = make_app(TFSERVING_REST_URL=dead_rest_url, MAX_CONTENT_LENGTH=10_000)
    client = app.test_client()
    big = png_bytes(Image.effect_noise((200, 200), 80))
    assert len(big) > 10_000
    response = post_file(client, big)
    assert response.status_code == 413
    assert "limit of 10000 bytes" in response.json["error"]
    response = client.post("/api/predict", json={"image_b64": base64.b64encode(big).decode()})
    assert response.status_code == 413
    response = post_file(client, big, path="/")
    assert response.status_code == 413
    assert b"limit of 10000 bytes" in response.data
    upload_folder = Path(app.config["UPLOAD_FOLDER"])
    assert not upload_folder.exists() or not any(upload_folder.iterdir())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"image_b64": "not base64 !!"}, "not valid base64"),
        ({"image": "abc"}, "image_b64"),
        (["image_b64"], "image_b64"),
        ({"image_b64": 42}, "image_b64"),
    ],
)
def test_bad_json_body_is_400(offline_client: FlaskClient, body: object, message: str) -> None:
    response = offline_client.post("/api/predict", json=body)
    assert response.status_code == 400
    assert message in response.json["error"]


def test_malformed_json_is_400(offline_client: FlaskClient) -> None:
    response = offline_client.post("/api/predict", data="{not json", content_type="application/json")
    assert response.status_code == 400


def test_missing_image_field_is_400(offline_client: FlaskClient) -> None:
    response = offline_client.post("/api/predict", data={"picture": (io.BytesIO(b"x"), "a.png")})
    assert response.status_code == 400
    assert '"image"' in response.json["error"]


def test_unknown_model_is_400(offline_client: FlaskClient, digit_png: bytes) -> None:
    response = offline_client.post(
        "/api/predict", data={"image": (io.BytesIO(digit_png), "d.png"), "model": "../../secret"}
    )
    assert response.status_code == 400
    assert "unknown model" in response.json["error"]


def test_bad_upload_on_the_page_shows_the_message(offline_client: FlaskClient) -> None:
    response = post_file(offline_client, b"plain text", path="/")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert b"not an image" in response.data
    assert b'id="upload-form"' in response.data  # the form is there to try again


def test_check_image_prepares_png_for_formats_the_graph_does_not_decode() -> None:
    for image_format in ("GIF", "BMP", "WEBP"):
        checked = check_image(encoded(image_format), max_pixels=10_000)
        assert checked.format == image_format
        assert checked.model_bytes.startswith(b"\x89PNG")
    jpeg = encoded("JPEG")
    assert check_image(jpeg, max_pixels=10_000).model_bytes == jpeg
    with pytest.raises(BadImage):
        check_image(b"GIF89a", max_pixels=10_000)
