"""Version discovery, policies, labels, polling and availability preservation, on stand-ins started per test.

These need a server whose model directories and config the test controls, so they always run the
stand-in (they are skipped when --tfserving-rest points at an external server).
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.standin.metrics_support import monitoring_flag, scrape
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("standin_only")]

TIMEOUT = 30


def publish(source: Path, base_path: Path, version: int | str) -> Path:
    """Copy under a non-numeric name, then rename to the version number (atomic on one filesystem)."""
    base_path.mkdir(parents=True, exist_ok=True)
    staging = base_path / f".staging-{version}"
    shutil.copytree(source, staging)
    target = base_path / str(version)
    staging.rename(target)
    return target


def statuses(server, model: str) -> dict[str, dict]:
    response = requests.get(f"{server.rest_url}/v1/models/{model}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return {s["version"]: s for s in response.json()["model_version_status"]}


def predict(server, model: str, values: list[float], suffix: str = "") -> requests.Response:
    return requests.post(
        f"{server.rest_url}/v1/models/{model}{suffix}:predict", json={"instances": values}, timeout=TIMEOUT
    )


def test_new_version_replaces_old_without_a_failed_request(
    tmp_path, start_standin, standin_test_models
) -> None:
    base = tmp_path / "models" / "half_plus_two"
    publish(standin_test_models / "half_plus_two" / "1", base, 1)
    server = start_standin({"half_plus_two": base}, flags=["--file_system_poll_wait_seconds=1"])
    failures: list[str] = []
    answers: set[float] = set()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            response = predict(server, "half_plus_two", [2.0])
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text}")
            else:
                answers.add(response.json()["predictions"][0])

    workers = [threading.Thread(target=client) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        publish(standin_test_models / "half_plus_two_v2", base, 2)
        wait_for(
            lambda: statuses(server, "half_plus_two").get("1", {}).get("state") == "END", "version 1 unloaded"
        )
        time.sleep(0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert answers == {3.0, 4.0}  # 0.5 * 2 + 2 from version 1, then 0.5 * 2 + 3 from version 2
    final = statuses(server, "half_plus_two")
    assert final["2"]["state"] == "AVAILABLE"
    assert final["1"]["status"]["error_code"] == "OK"


def test_broken_version_does_not_replace_the_serving_one_and_counts_a_failed_load(
    tmp_path, start_standin, standin_test_models
) -> None:
    base = tmp_path / "models" / "half_plus_two"
    publish(standin_test_models / "half_plus_two" / "1", base, 1)
    flags = ["--file_system_poll_wait_seconds=1", "--max_num_load_retries=0", monitoring_flag(tmp_path)]
    server = start_standin({"half_plus_two": base}, flags=flags)
    broken = base / ".staging-2"
    shutil.copytree(standin_test_models / "half_plus_two_v2", broken)
    saved_model = broken / "saved_model.pb"
    saved_model.write_bytes(saved_model.read_bytes()[:100])  # a half-copied file
    broken.rename(base / "2")
    wait_for(
        lambda: statuses(server, "half_plus_two").get("2", {}).get("state") == "END", "version 2 to fail"
    )
    status = statuses(server, "half_plus_two")
    assert status["2"]["status"]["error_code"] != "OK"
    assert status["2"]["status"]["error_message"]
    assert status["1"]["state"] == "AVAILABLE"
    response = predict(server, "half_plus_two", [2.0])
    assert response.json() == {"predictions": [3.0]}
    # What the "model load failures" alert reads: one failed LoadSavedModel for the broken directory.
    page = scrape(server.rest_url)
    attempts = ":tensorflow:cc:saved_model:load_attempt_count"
    assert page.value(attempts, model_path=str((base / "2").resolve()), status="fail") == 1
    assert page.value(attempts, model_path=str((base / "1").resolve()), status="success") == 1
    # A good version published after the broken one is picked up and takes over.
    publish(standin_test_models / "half_plus_two_v2", base, 3)
    wait_for(
        lambda: statuses(server, "half_plus_two").get("1", {}).get("state") == "END", "version 1 unloaded"
    )
    assert predict(server, "half_plus_two", [2.0]).json() == {"predictions": [4.0]}


POLICIES_CONFIG = """
model_config_list {{
  config {{ name: "latest_two" base_path: "{base}" model_platform: "tensorflow"
           model_version_policy {{ latest {{ num_versions: 2 }} }} }}
  config {{ name: "all_versions" base_path: "{base}" model_platform: "tensorflow"
           model_version_policy {{ all {{}} }} }}
  config {{ name: "specific" base_path: "{base}" model_platform: "tensorflow"
           model_version_policy {{ specific {{ versions: 1 versions: 3 }} }}
           version_labels {{ key: "stable" value: 1 }}
           version_labels {{ key: "canary" value: 3 }} }}
  config {{ name: "default_policy" base_path: "{base}" model_platform: "tensorflow" }}
}}
"""


@pytest.fixture(scope="module")
def policy_server(tmp_path_factory, start_session_standin, standin_test_models):
    base = tmp_path_factory.mktemp("policies") / "half_plus_two"
    for version in (1, 2, 3):
        publish(standin_test_models / "half_plus_two" / "1", base, version)
    for not_a_version in (".staging-7", "8.partial", "v9"):  # never versions, whatever they hold
        shutil.copytree(standin_test_models / "half_plus_two" / "1", base / not_a_version)
    # Labels at start-up need this flag (otherwise the real server refuses them; see the test below).
    return start_session_standin(
        config_text=POLICIES_CONFIG.format(base=base),
        flags=["--allow_version_labels_for_unavailable_models=true", "--no_such_flag=1"],
    )


@pytest.mark.parametrize(
    ("model", "versions"),
    [
        ("latest_two", {"2", "3"}),
        ("all_versions", {"1", "2", "3"}),
        ("specific", {"1", "3"}),
        ("default_policy", {"3"}),
    ],
)
def test_version_policies_and_integer_only_directories(policy_server, model, versions) -> None:
    available = {v for v, s in statuses(policy_server, model).items() if s["state"] == "AVAILABLE"}
    assert available == versions


def test_labels_and_versions_route_predictions(policy_server) -> None:
    for suffix in ("/labels/stable", "/labels/canary", "/versions/1", "/versions/3", ""):
        response = predict(policy_server, "specific", [1.0], suffix)
        assert response.status_code == 200, (suffix, response.text)
        assert response.json() == {"predictions": [2.5]}
    response = predict(policy_server, "specific", [1.0], "/versions/2")
    assert response.status_code == 404
    assert response.json() == {"error": "Servable not found for request: Specific(specific, 2)"}
    metadata = requests.get(
        f"{policy_server.rest_url}/v1/models/specific/labels/stable/metadata", timeout=TIMEOUT
    )
    assert metadata.json()["model_spec"]["version"] == "1"


def test_unknown_flag_is_reported_and_the_server_starts_anyway(policy_server) -> None:
    log = policy_server.log_text()
    assert "unknown argument: --no_such_flag=1" in log
    assert policy_server.process.poll() is None


def test_paused_server_times_out_and_recovers_after_resume(policy_server) -> None:
    policy_server.pause()
    try:
        with pytest.raises(requests.Timeout):
            requests.get(f"{policy_server.rest_url}/v1/models/specific", timeout=1)
    finally:
        policy_server.resume()
    assert predict(policy_server, "specific", [1.0]).json() == {"predictions": [2.5]}


def test_labels_at_startup_need_the_allow_flag(tmp_path, start_standin, standin_test_models) -> None:
    base = tmp_path / "half_plus_two"
    publish(standin_test_models / "half_plus_two" / "1", base, 1)
    config = (
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" model_platform: "tensorflow" '
        'version_labels { key: "stable" value: 1 } } }'
    )
    server = start_standin(config_text=config, wait_available=False)
    assert server.process.wait(timeout=120) == 255
    assert (
        "Failed to start server. Error: FAILED_PRECONDITION: "
        "Request to assign label to version 1 of model m, which is not currently available for inference"
    ) in server.log_text()


def test_config_file_poll_adds_and_removes_models_and_survives_a_bad_file(
    tmp_path, start_standin, standin_test_models
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    publish(standin_test_models / "half_plus_two" / "1", first, 1)
    publish(standin_test_models / "half_plus_two_v2", second, 1)
    server = start_standin({"first": first}, flags=["--model_config_file_poll_wait_seconds=1"])
    server.config_path.write_text(
        f'model_config_list {{ config {{ name: "second" base_path: "{second}" '
        'model_platform: "tensorflow" } }'
    )
    wait_for(lambda: predict(server, "second", [2.0]).status_code == 200, "model second served")
    wait_for(lambda: statuses(server, "first")["1"]["state"] == "END", "model first unloaded")
    assert predict(server, "first", [2.0]).status_code == 404
    server.config_path.write_text("model_config_list { config { name: ")
    wait_for(
        lambda: "Failed to read ModelServerConfig file" in server.log_text(), "the bad file to be reported"
    )
    assert predict(server, "second", [2.0]).json() == {"predictions": [4.0]}
