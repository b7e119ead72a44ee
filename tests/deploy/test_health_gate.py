"""The health gates catch what systemd does not: the REST port taken by another process leaves the server
running with gRPC only and its unit active (reliability case 12); the front end's gate reads /readyz."""

from __future__ import annotations

import pytest
import requests

from tests.deploy.deploy_support import (
    GRPC_TARGET,
    NOT_YET,
    REST_URL,
    SERVER_UNIT,
    WEB_UNIT,
    box_shell,
    wait_until_serving,
)
from tests.support.network import accepts
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.box, pytest.mark.slow]


@pytest.fixture
def squatter_on_rest_port(converged_box, host):
    box_shell(host, "systemctl stop tfserving")
    box_shell(host, "systemd-run --unit=port-squatter python3 -m http.server --bind 0.0.0.0 8501")
    wait_for(lambda: requests.get(f"{REST_URL}/", timeout=2).ok, "the squatter on 8501", 20, tolerate=NOT_YET)
    box_shell(host, "systemctl start tfserving")
    # Up as far as it gets (gRPC only), so the gate's time goes to the model checks, which must fail.
    address, port = GRPC_TARGET.rsplit(":", 1)
    wait_for(lambda: accepts(address, int(port), timeout=2), "the server's gRPC port", 180)
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
    timeout = 30
    run = converged_box.run(
        "site.yml", "--tags", "tfserving_verify", extra_vars={"tensorflow_serving_health_timeout": timeout}
    )

    assert run.returncode != 0, "the gate passed although another process holds the REST port"
    # The squatter answers on 8501, so the gate fails on the model status, not on the port.
    assert "failed its health check on Wait until every model is AVAILABLE" in run.output, run.output[-3000:]
    # One budget for the whole gate: the models' checks share the timeout, so they look again at most
    # timeout / 2 times in all (every 2 s); a budget per model looked again twice as often with two.
    looks_again = sum(
        "FAILED - RETRYING" in line and "Wait until every model is AVAILABLE" in line
        for line in run.output.splitlines()
    )
    assert 0 < looks_again <= timeout / 2, looks_again
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
