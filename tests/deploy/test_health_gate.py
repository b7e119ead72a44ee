"""The health gates catch what systemd does not: the REST port taken by another process leaves the server
running with gRPC only and its unit active (reliability case 12); the front end's gate reads /readyz."""

from __future__ import annotations

import pytest
import requests

from tests.deploy.deploy_support import (
    NOT_YET,
    REST_URL,
    SERVER_UNIT,
    WEB_UNIT,
    box_shell,
    wait_until_serving,
)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.box, pytest.mark.slow]


@pytest.fixture
def squatter_on_rest_port(converged_box, host):
    box_shell(host, "systemctl stop tfserving")
    box_shell(host, "systemd-run --unit=port-squatter python3 -m http.server --bind 0.0.0.0 8501")
    wait_for(lambda: requests.get(f"{REST_URL}/", timeout=2).ok, "the squatter on 8501", 20, tolerate=NOT_YET)
    box_shell(host, "systemctl start tfserving")
    yield
    host.run("systemctl stop port-squatter")
    box_shell(host, "systemctl restart tfserving")
    wait_until_serving()


@pytest.fixture
def web_front_end_stopped(converged_box, host):
    box_shell(host, f"systemctl stop {WEB_UNIT}")
    yield
    box_shell(host, f"systemctl start {WEB_UNIT}")
    wait_until_serving()


def test_health_gate_fails_when_the_rest_port_is_taken(converged_box, host, squatter_on_rest_port) -> None:
    run = converged_box.run(
        "site.yml", "--tags", "tfserving_verify", extra_vars={"tensorflow_serving_health_timeout": 30}
    )

    assert run.returncode != 0, "the gate passed although another process holds the REST port"
    # The squatter answers on 8501, so the gate fails on the model status, not on the port.
    assert "TensorFlow Serving failed its health check on" in run.output, run.output[-3000:]
    # The gate quotes the server's journal.
    assert "Last lines of `journalctl -u tfserving`" in run.output
    # The trap this guards against: systemd alone says all is well.
    assert host.service(SERVER_UNIT).is_running


def test_web_health_gate_fails_with_the_journal_when_the_front_end_does_not_answer(
    converged_box, web_front_end_stopped
) -> None:
    run = converged_box.run("site.yml", "--tags", "webapp_verify", extra_vars={"webapp_health_timeout": 4})

    assert run.returncode != 0
    assert "The web front end failed its health check on Wait for /readyz to answer 200" in run.output, (
        run.output[-3000:]
    )
    assert "Last lines of `journalctl -u tfserving-web`" in run.output
