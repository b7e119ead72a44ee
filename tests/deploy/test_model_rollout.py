"""Model rollout with playbooks/models.yml: a new version goes live without a restart; a corrupt one
fails the play and the old version keeps serving (reliability cases 9 and 10)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
from deploy_support import REPO_ROOT, REST_URL, main_pid, model_status, wait_for

pytestmark = [pytest.mark.box, pytest.mark.slow]

EXPORTED = REPO_ROOT / "serving_model"


def models_from(digits_source: Path) -> dict:
    """The models of group_vars/tfserving.yml with digits read from another folder."""
    return {
        "tensorflow_serving_models": [
            {"name": "digits", "source": str(digits_source)},
            {"name": "half_plus_two", "source": str(EXPORTED / "half_plus_two")},
        ]
    }


@pytest.fixture
def digits_source(tmp_path: Path, converged_box):
    """A copy of serving_model/digits to add versions to; the box is put back afterwards."""
    source = tmp_path / "digits"
    shutil.copytree(EXPORTED / "digits", source)
    yield source
    restored = converged_box.run("playbooks/models.yml")
    assert restored.returncode == 0, restored.output[-4000:]


def newest(source: Path) -> int:
    return max(int(path.name) for path in source.iterdir() if path.name.isdigit())


def predict_digit(png_b64: str) -> requests.Response:
    return requests.post(
        f"{REST_URL}/v1/models/digits:predict", json={"instances": [{"b64": png_b64}]}, timeout=10
    )


def test_new_version_goes_live_without_restart(converged_box, host, digits_source: Path) -> None:
    pid_before = main_pid(host, "tfserving.service")
    current = newest(digits_source)
    shutil.copytree(digits_source / str(current), digits_source / str(current + 1))

    run = converged_box.run("playbooks/models.yml", extra_vars=models_from(digits_source))

    assert run.returncode == 0, run.output[-4000:]
    states = {status["version"]: status["state"] for status in model_status("digits")}
    assert states.get(str(current + 1)) == "AVAILABLE", states
    assert main_pid(host, "tfserving.service") == pid_before, "the rollout restarted the server"
    assert not host.file(f"/srv/tfserving/models/digits/.staging-{current + 1}").exists


def test_corrupt_version_fails_the_play_and_the_old_one_keeps_serving(
    converged_box, host, digits_source: Path, digit_pngs
) -> None:
    import base64

    good = newest(digits_source)
    bad = good + 1
    shutil.copytree(digits_source / str(good), digits_source / str(bad))
    # Truncated, as a half-finished copy would leave it.
    pb = digits_source / str(bad) / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])
    pid_before = main_pid(host, "tfserving.service")

    # The server may retry the load; the gate fails either on the load error or on this timeout.
    run = converged_box.run(
        "playbooks/models.yml",
        extra_vars={**models_from(digits_source), "tensorflow_serving_health_timeout": 60},
    )

    assert run.returncode != 0, "a corrupt version must fail the rollout"
    assert f"version {bad}" in run.output and "health check" in run.output, run.output[-4000:]
    states = {status["version"]: status["state"] for status in model_status("digits")}
    assert states.get(str(good)) == "AVAILABLE", states
    png, label = digit_pngs[0]
    answer = predict_digit(base64.b64encode(png).decode())
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["class_id"] == label
    assert main_pid(host, "tfserving.service") == pid_before
    wait_for(lambda: requests.get(f"{REST_URL}/v1/models/digits", timeout=5).ok, 30, what="status answers")
