"""Monitoring on the box (issue 13): Prometheus scrapes every target, TF Serving's request counter grows
with the requests sent, the dashboard's queries are valid, and real faults make their alerts fire.

The box's runs shorten the scrape and evaluation intervals and every alert's `for:` (MONITORING_TEST_VARS,
recorded with the box's host vars), so an alert fires within seconds of its fault, as it would after
minutes with the role's defaults. Each fault is undone in a `finally`, and the box serves again before
the next test.
"""

from __future__ import annotations

import base64
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.deploy.deploy_support import (
    BOX_HOST,
    NOT_YET,
    REST_URL,
    SERVER_UNIT,
    WEB_URL,
    box_shell,
    wait_until_serving,
)
from tests.support.paths import REPO_ROOT
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.box, pytest.mark.slow]

PROMETHEUS_URL = "http://127.0.0.1:9090"
DASHBOARD = REPO_ROOT / "roles" / "prometheus" / "files" / "grafana-dashboard.json"
MODEL_DIR = "/srv/tfserving/models/digits"


def query(expression: str) -> list[dict]:
    answer = requests.get(f"{PROMETHEUS_URL}/api/v1/query", params={"query": expression}, timeout=10)
    body = answer.json()
    assert body["status"] == "success", f"{expression}: {body}"
    return body["data"]["result"]


def firing(alertname: str) -> list[dict]:
    alerts = requests.get(f"{PROMETHEUS_URL}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


def wait_for_alert(alertname: str, timeout: float = 60) -> dict:
    started = time.monotonic()
    wait_for(lambda: firing(alertname), f"the alert {alertname} to fire", timeout, 0.5, tolerate=NOT_YET)
    print(f"{alertname} fired {time.monotonic() - started:.1f} s after the fault")
    return firing(alertname)[0]


def test_every_target_is_scraped(converged_box) -> None:
    def all_up() -> bool:
        targets = requests.get(f"{PROMETHEUS_URL}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        return bool(targets) and all(target["health"] == "up" for target in targets)

    wait_for(all_up, "every target up", 30, 0.5, tolerate=NOT_YET)
    jobs = {result["metric"]["job"]: result["value"][1] for result in query("up")}
    assert jobs == {"prometheus": "1", "node": "1", "tfserving": "1", "tfserving-web": "1"}


def test_tf_servings_request_counter_grows_with_requests(converged_box) -> None:
    counter = 'sum(:tensorflow:serving:request_count{model_name="half_plus_two",status="OK"}) or vector(0)'
    before = float(query(counter)[0]["value"][1])
    for _ in range(20):
        answer = requests.post(
            f"{REST_URL}/v1/models/half_plus_two:predict", json={"instances": [1.0]}, timeout=10
        )
        assert answer.status_code == 200, answer.text
    wait_for(
        lambda: float(query(counter)[0]["value"][1]) >= before + 20, "the counter to count 20 more", 30, 0.5
    )


def test_the_dashboards_queries_are_valid_and_find_the_stacks_metrics(converged_box) -> None:
    panels = [panel for panel in json.loads(DASHBOARD.read_text())["panels"] if panel["type"] != "row"]
    empty = []
    for panel in panels:
        for target in panel["targets"]:
            expression = target["expr"].replace("$__rate_interval", "1m").replace("$instance", ".*")
            if not query(expression):
                empty.append(panel["title"])
    # Without HAProxy, alerts, failures or upload rejections on the box, these have nothing to show.
    assert set(empty) <= {
        "HAProxy servers in rotation per backend",
        "Firing alerts",
        "Upload rejections per second by reason",
        "Model loads by status",
    }, empty


def test_a_stopped_model_server_fires_scrape_target_down(converged_box, host) -> None:
    try:
        box_shell(host, f"systemctl stop {SERVER_UNIT}")
        alert = wait_for_alert("ScrapeTargetDown")
        assert alert["labels"]["job"] == "tfserving"
    finally:
        box_shell(host, f"systemctl start {SERVER_UNIT}")
        wait_until_serving()
    wait_for(lambda: not firing("ScrapeTargetDown"), "the alert to resolve", 60, 0.5, tolerate=NOT_YET)


def test_a_version_that_fails_to_load_fires_model_load_failed(converged_box, host) -> None:
    newest = max(int(v) for v in box_shell(host, f"ls {MODEL_DIR}").split() if v.isdigit())
    broken = f"{MODEL_DIR}/{newest + 1}"
    try:
        # A copy of the newest version with its graph truncated, as a half-finished copy leaves it.
        box_shell(
            host,
            f"cp -a {MODEL_DIR}/{newest} {broken}.tmp && truncate -s 100 {broken}.tmp/saved_model.pb"
            f" && mv {broken}.tmp {broken}",
        )
        alert = wait_for_alert("TensorFlowServingModelLoadFailed")
        assert alert["labels"]["model_path"].rstrip("/").endswith(f"digits/{newest + 1}"), alert
    finally:
        box_shell(host, f"rm -rf {broken} {broken}.tmp")
        wait_until_serving()


def test_a_frozen_model_server_fires_the_web_error_rate(converged_box, host, digit_pngs) -> None:
    png = base64.b64encode(digit_pngs[0][0]).decode()

    def web_predict(_: int) -> int:
        try:
            return requests.post(f"{WEB_URL}/api/predict", json={"image_b64": png}, timeout=30).status_code
        except requests.RequestException:
            return 0

    errors = 'sum(tfweb_requests_total{status=~"5.."}) or vector(0)'
    try:
        box_shell(host, f"systemctl kill --signal=SIGSTOP {SERVER_UNIT}")
        # Two waves of 8 (the front end serves 8 at once; each waits out its read timeout). A 5xx
        # series is born with its first burst, which rate() cannot see: errors that go on (the second
        # wave, once Prometheus has scraped the first) are what the alert is about.
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(web_predict, range(8)))
            wait_for(
                lambda: float(query(errors)[0]["value"][1]) >= 8, "Prometheus to see the first errors", 10
            )
            statuses += list(pool.map(web_predict, range(8)))
        assert all(500 <= status < 600 for status in statuses), statuses
        alert = wait_for_alert("WebFrontEndHighErrorRate", timeout=30)
        assert alert["labels"]["instance"] == BOX_HOST
    finally:
        box_shell(host, f"systemctl kill --signal=SIGCONT {SERVER_UNIT}")
        wait_until_serving()


def test_the_key_expiry_reaches_prometheus_from_the_textfile(converged_box) -> None:
    results = query("tfstack_apt_signing_key_expiry_timestamp_seconds")
    assert results, "no key expiry metric: service_common's textfile or the node exporter's collector"
    assert all(re.fullmatch(r"[0-9A-F]{40}", r["metric"]["fingerprint"]) for r in results), results
    assert all(float(r["value"][1]) > time.time() for r in results), results
