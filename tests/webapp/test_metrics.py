"""The web front end's Prometheus metrics (/metrics): the names the alert rules use, their labels, and
under real gunicorn with 2 workers that the counts add up over the workers and survive a worker's
exit, and start from 0 with a new gunicorn."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests
import yaml
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.support.paths import REPO_ROOT
from tests.support.waiting import wait_for
from tests.webapp.webtest_support import (
    AppFactory,
    Digit,
    gunicorn_env,
    gunicorn_server,
    require_digits,
)

PREDICT_OK = {"endpoint": "api.predict", "method": "POST", "status": "200"}
PROMETHEUS_ROLE = REPO_ROOT / "roles" / "prometheus"
# The label sets of the web alerts' queries (requests and latency) and of the dashboard's latency panels'.
RULES_QUERY = re.compile(r"(?:tfweb_requests_total|tfweb_request_duration_seconds_bucket)\{([^}]*)\}")
LATENCY_QUERY = re.compile(r"tfweb_request_duration_seconds_bucket\{([^}]*)\}")
# The role's selector of users' requests, as the rules template names it, and its regular expression.
USER_REQUESTS_VARIABLE = "_prometheus_web_user_requests"
ENDPOINT_EXCLUSION = re.compile(r'endpoint!~"([^"]*)"')


def sample(name: str, labels: dict[str, str]) -> float:
    """A value of this process's metrics (the Flask test client runs the app in this process)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics, keyed by name and labels."""
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (item.name, frozenset(item.labels.items())): item.value
        for family in text_string_to_metric_families(response.text)
        for item in family.samples
    }


def value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def writers(metrics_dir: Path) -> set[int]:
    """The processes that have counted something: prometheus_client's files are <kind>_<pid>.db."""
    return {int(path.stem.split("_")[-1]) for path in metrics_dir.glob("counter_*.db")}


def request_counts() -> dict[frozenset, float]:
    return {
        frozenset(item.labels.items()): item.value
        for family in REGISTRY.collect()
        if family.name == "tfweb_requests"
        for item in family.samples
        if item.name == "tfweb_requests_total"
    }


def endpoint_label(client: FlaskClient, method: str, path: str) -> str:
    """The endpoint label the app counts this request under: the one whose count it raised."""
    before = request_counts()
    client.open(path, method=method)
    raised = {labels for labels, count in request_counts().items() if count > before.get(labels, 0.0)}
    (endpoint,) = {dict(labels)["endpoint"] for labels in raised}
    return endpoint


def user_request_exclusions() -> list[str]:
    """The endpoint exclusion of each query about users' requests: the role's selector, which the web
    alerts' queries (the error rate's two sums, the latency alert's buckets) must use, and the
    dashboard's latency panels' own copies."""
    role_vars = yaml.safe_load((PROMETHEUS_ROLE / "vars/main.yml").read_text())
    selector = role_vars[USER_REQUESTS_VARIABLE]
    rules = (PROMETHEUS_ROLE / "templates/etc/prometheus/rules/tfserving-stack.rules.yml.j2").read_text()
    rule_label_sets = RULES_QUERY.findall(rules)
    assert len(rule_label_sets) == 3, rule_label_sets
    assert all(f"[[ {USER_REQUESTS_VARIABLE} ]]" in labels for labels in rule_label_sets), rule_label_sets
    dashboard = json.loads((PROMETHEUS_ROLE / "files/grafana-dashboard.json").read_text())
    panels = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    panel_label_sets = [labels for query in panels for labels in LATENCY_QUERY.findall(query)]
    assert len(panel_label_sets) == 2, panel_label_sets  # p50 and p95
    exclusions = [ENDPOINT_EXCLUSION.search(labels) for labels in [selector, *panel_label_sets]]
    assert all(exclusions), (selector, panel_label_sets)
    return [match.group(1) for match in exclusions if match]


def post_image(client: FlaskClient, data: bytes) -> int:
    return client.post("/api/predict", data={"image": (io.BytesIO(data), "x.png")}).status_code


def test_web_alerts_and_latency_panels_leave_out_scrapes_and_probes_only(make_app: AppFactory) -> None:
    """They select by the endpoint label the app sends: Prometheus' scrapes and the health probes,
    which answer at once and with 200, and would hide slow answers and dilute errors, are left out;
    users' requests are not."""
    client = make_app().test_client()
    probes = {endpoint_label(client, "GET", path) for path in ("/metrics", "/healthz", "/readyz")}
    users = {
        endpoint_label(client, "GET", "/"),
        endpoint_label(client, "POST", "/"),
        endpoint_label(client, "POST", "/api/predict"),
        endpoint_label(client, "GET", "/uploads/none.png"),
        endpoint_label(client, "GET", "/nowhere"),
    }
    for pattern in user_request_exclusions():
        # PromQL anchors its regular expressions at both ends, as fullmatch does.
        assert {endpoint for endpoint in probes if not re.fullmatch(pattern, endpoint)} == set(), pattern
        assert {endpoint for endpoint in users if re.fullmatch(pattern, endpoint)} == set(), pattern


def test_rejections_and_unmatched_routes_are_counted_by_reason(
    make_app: AppFactory, digit_png: bytes
) -> None:
    client = make_app(MAX_CONTENT_LENGTH=len(digit_png) + 1000).test_client()
    before = {
        reason: sample("tfweb_upload_rejections_total", {"reason": reason})
        for reason in ("format", "empty", "too_large", "bad_request")
    }
    bad_request = {"endpoint": "api.predict", "method": "POST", "status": "400"}
    unmatched = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    counted_400, counted_404 = (
        sample("tfweb_requests_total", bad_request),
        sample("tfweb_requests_total", unmatched),
    )

    assert post_image(client, b"not an image") == 400
    assert post_image(client, b"") == 400
    assert post_image(client, digit_png + os.urandom(2000)) == 413
    assert client.post("/api/predict", json={"image_b64": "%%%"}).status_code == 400
    assert client.get("/no/such/page").status_code == 404

    for reason in before:
        assert sample("tfweb_upload_rejections_total", {"reason": reason}) == before[reason] + 1, reason
    assert sample("tfweb_requests_total", bad_request) == counted_400 + 3
    assert sample("tfweb_requests_total", unmatched) == counted_404 + 1  # never the path as a label
    text = client.get("/metrics").get_data(as_text=True)
    for name in (
        "tfweb_requests_total",
        "tfweb_request_duration_seconds_bucket",
        "tfweb_upload_rejections_total",
    ):
        assert name in text


def test_the_api_answers_other_methods_and_paths_in_json_counted_as_unmatched(
    offline_client: FlaskClient,
) -> None:
    """The JSON API answers everything under /api/ itself (it is not a Flask view): wrong method 405
    with Allow, wrong path 404, both in JSON with the security headers, never the path as a label."""
    wrong_method = {"endpoint": "unmatched", "method": "GET", "status": "405"}
    wrong_path = {"endpoint": "unmatched", "method": "POST", "status": "404"}
    counted = {
        key: sample("tfweb_requests_total", labels)
        for key, labels in (("method", wrong_method), ("path", wrong_path))
    }

    get = offline_client.get("/api/predict")
    assert get.status_code == 405 and get.headers["Allow"] == "POST, OPTIONS"
    assert "not allowed" in get.get_json()["error"]
    nowhere = offline_client.post("/api/predict/", data=b"")
    assert nowhere.status_code == 404 and "not found" in nowhere.get_json()["error"]
    assert nowhere.headers["X-Content-Type-Options"] == "nosniff"
    options = offline_client.options("/api/predict")
    assert options.status_code == 200 and options.headers["Allow"] == "POST, OPTIONS"

    assert sample("tfweb_requests_total", wrong_method) == counted["method"] + 1
    assert sample("tfweb_requests_total", wrong_path) == counted["path"] + 1


def test_model_server_calls_are_timed_by_transport_and_outcome(
    make_app: AppFactory, offline_client: FlaskClient, tfserving, digit_png: bytes
) -> None:
    require_digits(tfserving)
    count = "tfweb_model_server_call_duration_seconds_count"
    grpc_ok, rest_error = {"transport": "grpc", "outcome": "ok"}, {"transport": "rest", "outcome": "error"}
    before_ok, before_error = sample(count, grpc_ok), sample(count, rest_error)

    grpc_client = make_app(
        TFSERVING_TRANSPORT="grpc", TFSERVING_GRPC_TARGET=tfserving.grpc_target
    ).test_client()
    assert post_image(grpc_client, digit_png) == 200
    assert post_image(offline_client, digit_png) == 503

    # gRPC: the signature (first request of the app) and the prediction.
    assert sample(count, grpc_ok) == before_ok + 2
    assert sample(count, rest_error) == before_error + 1
    assert sample("tfweb_model_server_call_duration_seconds_sum", grpc_ok) > 0


@pytest.mark.slow
def test_counts_add_up_over_two_gunicorn_workers_and_survive_one_exiting(
    tfserving, digits: list[Digit], tmp_path: Path
) -> None:
    require_digits(tfserving)
    metrics_dir = tmp_path / "metrics"
    env = gunicorn_env(tfserving.rest_url, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    started = time.perf_counter()
    with gunicorn_server(env, tmp_path / "gunicorn.log", workers=2) as server:
        session = requests.Session()
        predict = f"{server.url}/api/predict"

        def send(count: int) -> None:
            for digit in digits[:count]:
                response = session.post(predict, files={"image": ("d.png", digit.png)}, timeout=30)
                assert response.status_code == 200, response.text

        send(10)
        first = scrape(server.url)
        assert value(first, "tfweb_requests_total", **PREDICT_OK) == 10
        assert value(first, "tfweb_request_duration_seconds_count", endpoint="api.predict") == 10
        calls = value(first, "tfweb_model_server_call_duration_seconds_count", transport="rest", outcome="ok")
        assert calls >= 10  # one predict each, plus the first status and metadata calls of each worker

        # A worker that counted some of them ends (as at a max_requests restart); gunicorn starts another.
        victim = min(writers(metrics_dir) & server.worker_pids())
        os.kill(victim, signal.SIGTERM)
        wait_for(lambda: len(server.worker_pids() - {victim}) == 2, "a new worker", timeout=30)
        assert value(scrape(server.url), "tfweb_requests_total", **PREDICT_OK) == 10  # a live worker's answer
        send(10)
        second = scrape(server.url)
        assert value(second, "tfweb_requests_total", **PREDICT_OK) == 20
        assert value(second, "tfweb_request_duration_seconds_count", endpoint="api.predict") == 20
        scrapes = {"endpoint": "monitoring.metrics_text", "method": "GET", "status": "200"}
        assert value(second, "tfweb_requests_total", **scrapes) == 2
        # The sum is over the exited worker's file and the live ones'.
        assert victim in writers(metrics_dir) and len(writers(metrics_dir)) >= 2

    # A new gunicorn on the same folder starts from 0 (on_starting empties it).
    with gunicorn_server(env, tmp_path / "gunicorn2.log", workers=2) as server:
        assert value(scrape(server.url), "tfweb_requests_total", **PREDICT_OK) == 0
    print(f"\nmetrics over 2 workers, a worker exit and a restart: {time.perf_counter() - started:.1f} s")
