"""The app against a real TF Serving stand-in serving the exported digits model: real predictions,
the page, storage, the model picker, readiness, and transport failures (down, paused, unloaded)."""

from __future__ import annotations

import base64
import contextlib
import io
import re
import socket
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient

from tests.support.network import free_port
from tests.webapp.webtest_support import AppFactory, Digit, require_digits
from tfserving_web.uploads.store import DATABASE_NAME

pytestmark = pytest.mark.slow

SLACK_SECONDS = 3.0  # scheduling and interpreter overhead on a busy 2-core machine


def direct_prediction(rest_url: str, png: bytes) -> dict:
    """What TF Serving itself answers for the image, without the app in between."""
    response = requests.post(
        f"{rest_url}/v1/models/digits:predict",
        json={"signature_name": "serving_default", "instances": [{"b64": base64.b64encode(png).decode()}]},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["predictions"][0]


def served_version(rest_url: str, model: str = "digits") -> int:
    statuses = requests.get(f"{rest_url}/v1/models/{model}", timeout=10).json()["model_version_status"]
    return max(int(status["version"]) for status in statuses if status["state"] == "AVAILABLE")


@pytest.fixture
def client(make_app: AppFactory, tfserving) -> FlaskClient:
    require_digits(tfserving)
    return make_app(TFSERVING_REST_URL=tfserving.rest_url).test_client()


def post_png(
    client: FlaskClient, png: bytes, path: str = "/api/predict", filename: str = "digit.png", **form: str
):
    return client.post(path, data={"image": (io.BytesIO(png), filename), **form})


def test_api_predicts_held_out_digits_like_tf_serving(
    client: FlaskClient, tfserving, digits: list[Digit]
) -> None:
    sample = digits[:40]
    version = served_version(tfserving.rest_url)
    correct = 0
    latencies = []
    for digit in sample:
        started = time.perf_counter()
        response = post_png(client, digit.png)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.json
        body = response.json
        assert set(body) == {"model", "version", "class_id", "probabilities", "latency_ms"}
        assert body["model"] == "digits"
        assert body["version"] == version
        assert body["latency_ms"] > 0
        expected = direct_prediction(tfserving.rest_url, digit.png)
        assert body["class_id"] == expected["class_id"]
        assert body["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-6)
        assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-3)
        correct += body["class_id"] == digit.label
    print(
        f"\napp (Flask test client) -> stand-in REST: {len(sample)} predictions, median "
        f"{statistics.median(latencies):.1f} ms per request, accuracy {correct}/{len(sample)}"
    )
    # Held-out accuracy of the trained model is far above this; a wiring bug (wrong image, wrong
    # output) would land near 10 %.
    assert correct >= 0.85 * len(sample)


def test_api_accepts_json_base64_and_other_formats(client: FlaskClient, digits: list[Digit]) -> None:
    digit = digits[1]
    multipart = post_png(client, digit.png).json
    as_json = client.post("/api/predict", json={"image_b64": base64.b64encode(digit.png).decode()})
    assert as_json.status_code == 200
    assert as_json.json["class_id"] == multipart["class_id"]
    assert as_json.json["probabilities"] == pytest.approx(multipart["probabilities"], abs=1e-6)
    # The same pixels as GIF, BMP and WEBP (lossless) reach the model as PNG and give the same answer.
    from PIL import Image

    image = Image.open(io.BytesIO(digit.png))
    for image_format, options in (("GIF", {}), ("BMP", {}), ("WEBP", {"lossless": True})):
        buffer = io.BytesIO()
        image.save(buffer, format=image_format, **options)
        response = post_png(client, buffer.getvalue(), filename=f"digit.{image_format.lower()}")
        assert response.status_code == 200, (image_format, response.json)
        assert response.json["class_id"] == multipart["class_id"], image_format


def test_page_shows_result_bars_model_and_recent_predictions(
    client: FlaskClient, digits: list[Digit]
) -> None:
    digit = digits[2]
    expected = post_png(client, digit.png).json
    response = post_png(client, digit.png, path="/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.search(rf'id="predicted-class">{expected["class_id"]}<', page)
    assert len(re.findall(r'class="bar w-\d+"', page)) == 5  # TOP_CLASSES
    assert 'id="result-model">digits<' in page
    assert f'id="result-version">{expected["version"]}<' in page
    assert "data:image/png;base64," in page
    # Both predictions are stored; the page lists this visitor's (the page's, not the JSON API's)
    # with thumbnails that are served.
    assert post_png(client, digit.png, path="/").status_code == 200
    listing = client.get("/").get_data(as_text=True)
    thumbnails = re.findall(r'src="(/uploads/[^"]+\.thumb\.png)"', listing)
    assert len(thumbnails) == 2
    with client.get(thumbnails[0]) as thumbnail:
        assert thumbnail.status_code == 200 and thumbnail.mimetype == "image/png"


def test_uploads_are_stored_under_generated_names_and_bounded(
    make_app: AppFactory, tfserving, digits: list[Digit], tmp_path: Path
) -> None:
    require_digits(tfserving)
    app = make_app(TFSERVING_REST_URL=tfserving.rest_url, UPLOADS_KEPT=3)
    client = app.test_client()
    for digit in digits[:5]:
        response = post_png(client, digit.png, filename="../../etc/passwd")
        assert response.status_code == 200
    # The uploads are written by the worker's storing thread, after the answers: wait for it.
    assert app.extensions["upload_queue"]().flush(timeout=10)
    folder = Path(app.config["UPLOAD_FOLDER"])
    # The database and its write-ahead log: nothing named after the client's filename.
    database_files = {DATABASE_NAME, f"{DATABASE_NAME}-wal", f"{DATABASE_NAME}-shm"}
    assert {path.name for path in folder.iterdir()} <= database_files
    with contextlib.closing(sqlite3.connect(folder / DATABASE_NAME)) as database:
        rows = database.execute("SELECT id, image_extension, thumbnail IS NULL FROM predictions").fetchall()
    # The 3 latest, under generated ids; no thumbnail for the JSON API's uploads, which no page lists.
    assert len(rows) == 3, rows
    assert all(re.fullmatch(r"\d{8}T\d{12}-[0-9a-f]{8}", entry_id) for entry_id, _, _ in rows)
    assert {(extension, no_thumbnail) for _, extension, no_thumbnail in rows} == {("png", 1)}
    assert not (tmp_path / "etc").exists()
    assert client.get("/uploads/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/uploads/webapp.cfg").status_code == 404


def test_storage_can_be_switched_off(make_app: AppFactory, tfserving, digits: list[Digit]) -> None:
    require_digits(tfserving)
    app = make_app(TFSERVING_REST_URL=tfserving.rest_url, STORE_UPLOADS=False)
    assert post_png(app.test_client(), digits[0].png).status_code == 200
    assert not Path(app.config["UPLOAD_FOLDER"]).exists()


def test_readyz_is_200_when_the_model_is_available(client: FlaskClient, tfserving) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["version"] == served_version(tfserving.rest_url)
    assert client.get("/healthz").json == {"status": "ok"}


def test_model_picker_lists_only_image_models(
    make_app: AppFactory, tfserving, start_standin, digits: list[Digit]
) -> None:
    require_digits(tfserving)
    # Two image models (the same SavedModel under two names) and one that takes numbers.
    server = start_standin(
        models={
            "digits": tfserving.models["digits"],
            "digits_copy": tfserving.models["digits"],
            "half_plus_two": tfserving.models["half_plus_two"],
        }
    )
    client = make_app(
        TFSERVING_REST_URL=server.rest_url,
        MODEL_CANDIDATES=["digits_copy", "half_plus_two", "not_served"],
    ).test_client()
    page = client.get("/").get_data(as_text=True)
    options = re.findall(r'<option value="([^"]+)"', page)
    assert options == ["digits", "digits_copy"]

    response = post_png(client, digits[3].png, model="digits_copy")
    assert response.status_code == 200
    assert response.json["model"] == "digits_copy"
    response = post_png(client, digits[3].png, model="half_plus_two")
    assert response.status_code == 400
    assert "does not take images" in response.json["error"]
    response = post_png(client, digits[3].png, model="not_served")
    assert response.status_code == 503
    assert "not_served" in response.json["error"]


def test_server_down_is_503_within_the_connect_timeout(
    make_app: AppFactory, dead_rest_url: str, digit_png: bytes
) -> None:
    client = make_app(TFSERVING_REST_URL=dead_rest_url, CONNECT_TIMEOUT=1.0, CONNECT_RETRIES=2).test_client()
    started = time.monotonic()
    response = post_png(client, digit_png)
    elapsed = time.monotonic() - started
    print(f"\nrefused connection -> {response.status_code} after {elapsed * 1000:.0f} ms")
    assert response.status_code == 503
    assert "unreachable" in response.json["error"]
    assert elapsed < 3 * 1.0 + SLACK_SECONDS
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "unreachable" in ready.json["reason"]


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose SYNs go unanswered: a listener that never accepts, with its queue already full.
    This is a black-holed server on loopback (a real connect timeout, not a refusal)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # enough to fill the accept queue of a backlog-0 listener
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    yield port
    for sock in (*fillers, listener):
        sock.close()


def test_server_not_answering_connections_is_503_within_the_connect_timeouts(
    make_app: AppFactory, unanswered_port: int, digit_png: bytes
) -> None:
    client = make_app(
        TFSERVING_REST_URL=f"http://127.0.0.1:{unanswered_port}", CONNECT_TIMEOUT=1.0, CONNECT_RETRIES=1
    ).test_client()
    started = time.monotonic()
    response = post_png(client, digit_png)
    elapsed = time.monotonic() - started
    print(f"\nunanswered connection -> {response.status_code} after {elapsed * 1000:.0f} ms")
    assert response.status_code == 503
    assert elapsed < 2 * 1.0 + SLACK_SECONDS


def test_paused_server_is_504_within_the_read_timeout_and_recovers(
    make_app: AppFactory, start_standin, tfserving, digit_png: bytes
) -> None:
    require_digits(tfserving)
    server = start_standin(models={"digits": tfserving.models["digits"]})
    client = make_app(TFSERVING_REST_URL=server.rest_url, READ_TIMEOUT=2.0).test_client()
    assert post_png(client, digit_png).status_code == 200
    server.pause()
    try:
        started = time.monotonic()
        response = post_png(client, digit_png)
        elapsed = time.monotonic() - started
        print(f"\npaused (SIGSTOP) server -> {response.status_code} after {elapsed * 1000:.0f} ms")
        assert response.status_code == 504
        assert "did not answer within 2 s" in response.json["error"]
        assert elapsed < 2.0 + SLACK_SECONDS
        assert client.get("/readyz").status_code == 503
    finally:
        server.resume()
    assert post_png(client, digit_png).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_killed_server_is_503_and_the_app_recovers_when_it_is_back(
    make_app: AppFactory, start_standin, tfserving, digit_png: bytes
) -> None:
    require_digits(tfserving)
    server = start_standin(models={"digits": tfserving.models["digits"]})
    client = make_app(TFSERVING_REST_URL=server.rest_url).test_client()
    assert post_png(client, digit_png).status_code == 200
    server.kill()
    assert post_png(client, digit_png).status_code == 503
    assert client.get("/readyz").status_code == 503
    # Same ports again, as systemd's restart would give: the pooled session reconnects by itself.
    start_standin(
        models={"digits": tfserving.models["digits"]},
        flags=[f"--port={server.grpc_port}", f"--rest_api_port={server.rest_port}"],
    )
    assert post_png(client, digit_png).status_code == 200
    assert client.get("/readyz").status_code == 200


def _wait_for_status(client: FlaskClient, status: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.status_code == status or time.monotonic() > deadline:
            return {**response.json, "http_status": response.status_code}
        time.sleep(0.25)


def test_readiness_flips_when_the_model_is_unloaded_and_back(
    make_app: AppFactory, start_standin, tfserving, digit_png: bytes
) -> None:
    require_digits(tfserving)
    server = start_standin(
        models={"digits": tfserving.models["digits"], "half_plus_two": tfserving.models["half_plus_two"]},
        flags=["--model_config_file_poll_wait_seconds=1"],
    )
    client = make_app(TFSERVING_REST_URL=server.rest_url).test_client()
    assert client.get("/readyz").status_code == 200
    original = server.config_path.read_text()
    # A reload realizes exactly the new file: digits, missing from it, is unloaded.
    server.config_path.write_text(
        'model_config_list {\n  config {\n    name: "half_plus_two"\n'
        f'    base_path: "{tfserving.models["half_plus_two"]}"\n    model_platform: "tensorflow"\n  }}\n}}\n'
    )
    unready = _wait_for_status(client, 503)
    assert unready["http_status"] == 503, unready
    assert "digits" in unready["reason"]
    response = post_png(client, digit_png)
    assert response.status_code == 503
    server.config_path.write_text(original)
    ready = _wait_for_status(client, 200)
    assert ready["http_status"] == 200, ready
    assert post_png(client, digit_png).status_code == 200


def test_grpc_transport_gives_the_same_answers(make_app: AppFactory, tfserving, digits: list[Digit]) -> None:
    require_digits(tfserving)
    rest = make_app(TFSERVING_REST_URL=tfserving.rest_url).test_client()
    grpc = make_app(TFSERVING_TRANSPORT="grpc", TFSERVING_GRPC_TARGET=tfserving.grpc_target).test_client()
    for digit in digits[:5]:
        over_rest = post_png(rest, digit.png).json
        over_grpc = post_png(grpc, digit.png)
        assert over_grpc.status_code == 200, over_grpc.json
        assert over_grpc.json["class_id"] == over_rest["class_id"]
        assert over_grpc.json["version"] == over_rest["version"]
        assert over_grpc.json["probabilities"] == pytest.approx(over_rest["probabilities"], abs=1e-6)
    ready = grpc.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert "image_bytes" not in grpc.get("/").get_data(as_text=True)  # page renders over gRPC too


def test_grpc_transport_server_down_is_503(make_app: AppFactory, digit_png: bytes) -> None:
    dead_target = f"127.0.0.1:{free_port()}"
    client = make_app(TFSERVING_TRANSPORT="grpc", TFSERVING_GRPC_TARGET=dead_target).test_client()
    response = post_png(client, digit_png)
    assert response.status_code == 503, response.json
    assert client.get("/readyz").status_code == 503
