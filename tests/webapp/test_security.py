"""Each visitor's own predictions, browser security headers, the form's cross-site check, the rate
limit on /api/predict and the client's address behind a trusted proxy (Flask's test client; the
browser test checks the same in Chromium)."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
import requests
from flask import Request
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.test import EnvironBuilder

from tests.webapp.webtest_support import AppFactory, Digit, gunicorn_server, png_bytes, require_digits
from tfserving_web.model_server import Prediction
from tfserving_web.security import SECURITY_HEADERS, TokenBuckets, client_address
from tfserving_web.uploads.images import check_image
from tfserving_web.uploads.store import PredictionStore

BROWSER_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def post_image(client: FlaskClient, png: bytes, path: str = "/", **headers: str):
    return client.post(path, data={"image": (io.BytesIO(png), "digit.png")}, headers=headers)


def assert_browser_headers(response) -> None:
    for name, value in {**SECURITY_HEADERS, **BROWSER_HEADERS}.items():
        assert response.headers.get(name) == value, (response.request.path, name, response.headers)
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy


def stored_thumbnails(client: FlaskClient) -> list[str]:
    return re.findall(r'src="(/uploads/[^"]+\.thumb\.png)"', client.get("/").get_data(as_text=True))


@pytest.fixture
def app_with_model(make_app: AppFactory, tfserving):
    require_digits(tfserving)
    return make_app(TFSERVING_REST_URL=tfserving.rest_url)


@pytest.mark.slow
def test_every_answer_carries_the_headers_and_stored_images_are_only_images(
    app_with_model, digits: list[Digit]
) -> None:
    client = app_with_model.test_client()
    page = client.get("/")
    assert_browser_headers(page)
    # No inline script or style left for the policy to block.
    html = page.get_data(as_text=True)
    assert " style=" not in html and "<style" not in html
    assert re.findall(r"<script[^>]*>", html) == [
        f'<script src="/static/{name}" defer>' for name in ("upload.js", "draw.js")
    ]
    prediction = post_image(client, digits[0].png, path="/api/predict")
    assert prediction.status_code == 200
    assert_browser_headers(prediction)
    assert_browser_headers(client.post("/api/predict", json={}))  # a 400
    assert post_image(client, digits[1].png).status_code == 200
    [thumbnail] = stored_thumbnails(client)
    with client.get(thumbnail) as image:
        assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
        assert "private" in image.headers["Cache-Control"]
        assert_browser_headers(image)
        etag = image.headers["ETag"]
    assert client.get(thumbnail, headers={"If-None-Match": etag}).status_code == 304
    for missing in ("/no-such-page", "/uploads/nothing.png", thumbnail.replace(".thumb.png", ".html")):
        error = client.get(missing)
        assert error.status_code == 404
        assert_browser_headers(error)


@pytest.mark.slow
def test_each_visitor_sees_and_gets_only_their_own_predictions(app_with_model, digits: list[Digit]) -> None:
    alice, bob = app_with_model.test_client(), app_with_model.test_client()
    assert post_image(alice, digits[0].png).status_code == 200
    assert post_image(alice, digits[1].png).status_code == 200
    assert post_image(bob, digits[2].png).status_code == 200
    # A JSON API upload is stored for no one: the API reads and sets no cookie, not even a visitor's.
    api = post_image(app_with_model.test_client(), digits[3].png, path="/api/predict")
    assert api.status_code == 200 and "Set-Cookie" not in api.headers
    from_alice = post_image(alice, digits[4].png, path="/api/predict")
    assert from_alice.status_code == 200 and "Set-Cookie" not in from_alice.headers
    alices, bobs = stored_thumbnails(alice), stored_thumbnails(bob)
    assert len(alices) == 2 and len(bobs) == 1 and not set(alices) & set(bobs)
    assert bob.get(alices[0]).status_code == 404
    assert app_with_model.test_client().get(alices[0]).status_code == 404
    with alice.get(alices[0]) as own:
        assert own.status_code == 200
    assert stored_thumbnails(app_with_model.test_client()) == []


def test_the_visitor_cookie_is_signed_httponly_and_samesite_lax(offline_client: FlaskClient) -> None:
    cookie = offline_client.get("/").headers["Set-Cookie"]
    assert cookie.startswith("tfweb_visitor=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # A forged cookie is not a visitor: a new one is given.
    offline_client.set_cookie("tfweb_visitor", '{"visitor": "0123456789abcdef0123456789abcdef"}')
    assert offline_client.get("/").headers["Set-Cookie"] != cookie


def test_a_new_secret_key_is_used_at_once_and_its_fallbacks_still_read_old_cookies(
    offline_client: FlaskClient,
) -> None:
    # The session interface keeps its serializer between requests: a key change must still count.
    app = offline_client.application

    def visitor_after_a_visit() -> str:
        offline_client.get("/")
        cookie = offline_client.get_cookie("tfweb_visitor")
        assert cookie is not None
        return app.session_interface.get_signing_serializer(app).loads(cookie.value)["visitor"]

    first = visitor_after_a_visit()
    old_key = app.secret_key
    app.secret_key, app.config["SECRET_KEY_FALLBACKS"] = "b" * 64, [old_key]
    assert visitor_after_a_visit() == first  # read with the fallback, signed again with the new key
    app.secret_key, app.config["SECRET_KEY_FALLBACKS"] = "c" * 64, []
    assert visitor_after_a_visit() != first  # unreadable now: a new visitor


def test_cross_site_form_posts_are_refused(offline_client: FlaskClient) -> None:
    png = b"not an image"
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
        # Same site, other origin (another port of the same host): still refused.
        {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:8081"},
    ):
        refused = post_image(offline_client, png, **headers)
        assert refused.status_code == 403, headers
        assert_browser_headers(refused)
    # The same origin, and programs that send no Origin, reach the form (a 400 for this non-image).
    assert post_image(offline_client, png, Origin="http://localhost").status_code == 400
    # Chromium's own post under Referrer-Policy: no-referrer: Origin null, but Sec-Fetch-Site says it.
    same_origin = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    assert post_image(offline_client, png, **same_origin).status_code == 400
    assert post_image(offline_client, png).status_code == 400


def test_the_rate_limit_answers_429_past_its_limit_and_recovers(make_app: AppFactory, dead_rest_url) -> None:
    # 600 a minute is one every 0.1 s; a burst of 3.
    app = make_app(
        TFSERVING_REST_URL=dead_rest_url, RATE_LIMIT=600, RATE_LIMIT_BURST=3, RATE_LIMIT_LOOPBACK=True
    )
    client = app.test_client()
    answers = [client.post("/api/predict", json={}) for _ in range(5)]
    assert [answer.status_code for answer in answers] == [400, 400, 400, 429, 429]
    assert answers[3].headers["Retry-After"] == "1"
    assert "too many requests" in answers[3].json["error"]
    assert_browser_headers(answers[3])
    time.sleep(0.25)
    assert client.post("/api/predict", json={}).status_code == 400
    # The page is not limited.
    assert client.get("/").status_code == 200


def test_loopback_is_not_limited_unless_turned_on(make_app: AppFactory, dead_rest_url) -> None:
    client = make_app(TFSERVING_REST_URL=dead_rest_url, RATE_LIMIT=1, RATE_LIMIT_BURST=1).test_client()
    assert {client.post("/api/predict", json={}).status_code for _ in range(5)} == {400}


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    make_app: AppFactory, dead_rest_url
) -> None:
    app = make_app(
        TFSERVING_REST_URL=dead_rest_url, RATE_LIMIT=1, RATE_LIMIT_BURST=1, TRUSTED_PROXIES="127.0.0.1,::1"
    )
    client = app.test_client()

    def status(forwarded: str, peer: str = "127.0.0.1") -> int:
        headers = {"X-Forwarded-For": forwarded}
        return client.post(
            "/api/predict", json={}, headers=headers, environ_base={"REMOTE_ADDR": peer}
        ).status_code

    assert [status("203.0.113.5"), status("203.0.113.5")] == [400, 429]
    # Another client through the proxy; a client-written address left of the proxy's is not trusted.
    assert status("203.0.113.6") == 400
    assert status("10.9.9.9, 203.0.113.5") == 429
    # From a peer that is no trusted proxy, X-Forwarded-For is ignored: the peer is the client.
    assert [status("203.0.113.7", peer="198.51.100.1"), status("203.0.113.8", peer="198.51.100.1")] == [
        400,
        429,
    ]


def test_client_address_takes_the_last_untrusted_forwarded_address() -> None:
    def address(peer: str, *forwarded: str) -> str:
        headers = [("X-Forwarded-For", value) for value in forwarded]
        request = Request(EnvironBuilder(headers=headers, environ_base={"REMOTE_ADDR": peer}).get_environ())
        return client_address(request, ["127.0.0.1", "192.0.2.1"])

    assert address("127.0.0.1", "1.1.1.1, 2.2.2.2", "192.0.2.1") == "2.2.2.2"
    assert address("127.0.0.1") == "127.0.0.1"
    assert address("8.8.8.8", "1.1.1.1") == "8.8.8.8"


def test_token_buckets_refill_at_the_rate_and_forget_the_oldest_client() -> None:
    buckets = TokenBuckets(rate=2.0, burst=2, max_clients=2)
    assert [buckets.take("a", now=0.0), buckets.take("a", now=0.0)] == [0.0, 0.0]
    assert buckets.take("a", now=0.0) == pytest.approx(0.5)
    assert buckets.take("a", now=0.5) == 0.0
    buckets.take("b", now=1.0)
    buckets.take("c", now=1.0)
    assert "a" not in buckets._buckets


def test_stored_predictions_expire_and_leave_no_copy_on_disk(tmp_path: Path) -> None:
    store = PredictionStore(str(tmp_path / "uploads"), keep=10, max_age=1.0)
    image = check_image(png_bytes(Image.effect_noise((16, 16), 80)), max_pixels=256)
    prediction = Prediction(model="digits", version=1, class_id=3, probabilities=[0.1] * 10, latency_ms=1.0)
    entry = store.new_entry(image, prediction, visitor="v" * 32)
    store.write([(entry, image.original)])
    assert [e.id for e in store.recent(5, "v" * 32)] == [entry.id]
    picture = store.picture(entry.image_file, "v" * 32)
    assert picture is not None and picture.data == image.original
    time.sleep(1.1)
    assert store.recent(5, "v" * 32) == []
    assert store.picture(entry.thumbnail_file, "v" * 32) is None
    store.prune()
    # Deleted, not only unlisted: neither the database nor its write-ahead log keeps the upload's bytes.
    on_disk = b"".join(path.read_bytes() for path in (tmp_path / "uploads").iterdir())
    assert on_disk and image.original not in on_disk
    assert entry.id.encode() not in on_disk


def test_the_secure_cookie_setting_marks_the_cookie(make_app: AppFactory, dead_rest_url) -> None:
    client = make_app(TFSERVING_REST_URL=dead_rest_url, SESSION_COOKIE_SECURE="true").test_client()
    assert "Secure" in client.get("/").headers["Set-Cookie"]


@pytest.mark.slow
def test_under_gunicorn_the_rate_limit_turned_on_answers_429_and_recovers(
    dead_rest_url, tmp_path: Path
) -> None:
    env = {
        "TFWEB_TFSERVING_REST_URL": dead_rest_url,
        "TFWEB_RATE_LIMIT": "60",  # one a second
        "TFWEB_RATE_LIMIT_BURST": "2",
        "TFWEB_RATE_LIMIT_LOOPBACK": "true",
    }
    with gunicorn_server(env, tmp_path / "gunicorn.log", workers=1) as server, requests.Session() as session:
        statuses = [session.post(f"{server.url}/api/predict", json={}, timeout=10) for _ in range(3)]
        assert [answer.status_code for answer in statuses] == [400, 400, 429]
        assert statuses[2].headers["Retry-After"] == "1"
        assert statuses[2].headers["X-Content-Type-Options"] == "nosniff"
        time.sleep(1.2)
        assert session.post(f"{server.url}/api/predict", json={}, timeout=10).status_code == 400


def test_expired_uploads_are_deleted_without_new_uploads(
    make_app: AppFactory, dead_rest_url, tmp_path: Path
) -> None:
    app = make_app(TFSERVING_REST_URL=dead_rest_url, UPLOADS_MAX_AGE=1)
    store = app.extensions["prediction_store"]
    image = check_image(png_bytes(Image.effect_noise((16, 16), 80)), max_pixels=256)
    prediction = Prediction(model="digits", version=1, class_id=3, probabilities=[0.1] * 10, latency_ms=1.0)
    entry = store.new_entry(image, prediction, visitor="v" * 32)
    store.write([(entry, image.original)])
    assert app.test_client().get("/healthz").status_code == 200  # the worker's first request
    deadline = time.monotonic() + 10
    while store.has(entry.id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not store.has(entry.id)
