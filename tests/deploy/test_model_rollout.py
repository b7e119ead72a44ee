"""Model rollout with playbooks/models.yml: a new version goes live without a restart; a corrupt one
fails the play and the old version keeps serving (reliability cases 9 and 10)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
import requests

from tests.deploy.deploy_support import NOT_YET, REST_URL, main_pid, model_status
from tests.support.paths import SERVING_MODEL_DIR
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.box, pytest.mark.slow]


def models_from(digits_source: Path) -> dict:
    """The models of group_vars/tfserving.yml with digits read from another folder."""
    return {
        "tensorflow_serving_models": [
            {"name": "digits", "source": str(digits_source)},
            {"name": "half_plus_two", "source": str(SERVING_MODEL_DIR / "half_plus_two")},
        ]
    }


@pytest.fixture
def digits_source(tmp_path: Path, converged_box):
    """A copy of serving_model/digits to add versions to; the box gets serving_model/'s versions back."""
    source = tmp_path / "digits"
    shutil.copytree(SERVING_MODEL_DIR / "digits", source)
    yield source
    converged_box.converge("playbooks/models.yml")


def newest(source: Path) -> int:
    return max(int(path.name) for path in source.iterdir() if path.name.isdigit())


def predict_digit(png_b64: str) -> requests.Response:
    return requests.post(
        f"{REST_URL}/v1/models/digits:predict", json={"instances": [{"b64": png_b64}]}, timeout=10
    )


def test_new_version_goes_live_without_restart(converged_box, host, digits_source: Path) -> None:
    pid_before = main_pid(host)
    current = newest(digits_source)
    shutil.copytree(digits_source / str(current), digits_source / str(current + 1))

    run = converged_box.run("playbooks/models.yml", extra_vars=models_from(digits_source))

    assert run.returncode == 0, run.output[-4000:]
    states = {status["version"]: status["state"] for status in model_status("digits")}
    assert states.get(str(current + 1)) == "AVAILABLE", states
    assert main_pid(host) == pid_before, "the rollout restarted the server"
    assert not host.file(f"/srv/tfserving/models/digits/.staging-{current + 1}").exists


def test_corrupt_version_fails_the_play_and_the_old_one_keeps_serving(
    converged_box, host, digits_source: Path, digit_pngs
) -> None:
    good = newest(digits_source)
    bad = good + 1
    shutil.copytree(digits_source / str(good), digits_source / str(bad))
    # Truncated, as a half-finished copy would leave it.
    pb = digits_source / str(bad) / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])
    pid_before = main_pid(host)

    # The server may retry the load; the gate fails either on the load error or on this timeout.
    run = converged_box.run(
        "playbooks/models.yml",
        extra_vars={**models_from(digits_source), "tensorflow_serving_health_timeout": 30},
    )

    assert run.returncode != 0, "a corrupt version must fail the rollout"
    assert f"version {bad}" in run.output and "health check" in run.output, run.output[-4000:]
    states = {status["version"]: status["state"] for status in model_status("digits")}
    assert states.get(str(good)) == "AVAILABLE", states
    png, label = digit_pngs[0]
    answer = predict_digit(base64.b64encode(png).decode())
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["class_id"] == label
    assert main_pid(host) == pid_before
    wait_for(
        lambda: requests.get(f"{REST_URL}/v1/models/digits", timeout=5).ok,
        "status answers",
        30,
        tolerate=NOT_YET,
    )
