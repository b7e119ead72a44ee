"""The REST port taken by another process: the server keeps running with gRPC only and its unit looks
active, so only the health gate can tell; it must fail (reliability case 12)."""

from __future__ import annotations

import pytest
import requests
from deploy_support import REST_URL, box_shell, models_available, wait_for

pytestmark = [pytest.mark.box, pytest.mark.slow]


@pytest.fixture
def squatter_on_rest_port(host):
    box_shell(host, "systemctl stop tfserving")
    box_shell(host, "systemd-run --unit=port-squatter python3 -m http.server --bind 0.0.0.0 8501")
    wait_for(lambda: requests.get(f"{REST_URL}/", timeout=2).ok, 20, what="the squatter on 8501")
    box_shell(host, "systemctl start tfserving")
    yield
    host.run("systemctl stop port-squatter")
    box_shell(host, "systemctl restart tfserving")
    wait_for(lambda: models_available("digits", "half_plus_two"), 120, what="tfserving back with its models")


def test_health_gate_fails_when_the_rest_port_is_taken(converged_box, host, squatter_on_rest_port) -> None:
    run = converged_box.run(
        "site.yml", "--tags", "tfserving_verify", extra_vars={"tensorflow_serving_health_timeout": 30}
    )

    assert run.returncode != 0, "the gate passed although another process holds the REST port"
    assert "failed its health check" in run.output, run.output[-3000:]
    # The trap this guards against: systemd alone says all is well.
    assert host.service("tfserving.service").is_running
