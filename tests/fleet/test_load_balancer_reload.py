"""HAProxy's configuration changed under continuous load through it (reliability case 26): the plain
loadbalancer play takes a model server out of the backends, then puts it back; each change is a reload
(the master keeps its process and the listening sockets), and REST, gRPC and web clients on kept-alive
connections see 0 failed requests. Every load is bounded and goes only to the load balancer's address.
"""

from __future__ import annotations

import time

import pytest

from tests.fleet.fleet_support import (
    LB,
    TFSERVING_HOSTS,
    assert_no_failures,
    haproxy_states,
    on_box,
    playbook,
)
from tests.support.load import continuous_load, fleet_clients
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.box, pytest.mark.slow]

RELOAD_HANDLER = "RUNNING HANDLER [haproxy : Reload haproxy]"


def _master_pid() -> str:
    return on_box("fleet-lb", "systemctl show -p MainPID --value haproxy").stdout.strip()


def _servers(backend: str) -> set[str]:
    return {server for (name, server) in haproxy_states() if name == backend}


def test_removing_and_adding_a_model_server_reloads_haproxy_without_a_failed_request(fleet) -> None:
    kept, removed = sorted(TFSERVING_HOSTS)
    master = _master_pid()
    with continuous_load(fleet_clients(LB)) as report:
        time.sleep(2)  # every client has its connection open and in use
        removal = playbook("playbooks/loadbalancer.yml", extra_vars={"haproxy_tfserving_servers": [kept]})
        assert removal.returncode == 0, removal.output[-4000:]
        after_removal = {backend: _servers(backend) for backend in ("tfserving_rest", "tfserving_grpc")}
        time.sleep(2)  # load on the smaller backend, and on the connections the reload kept
        addition = playbook("playbooks/loadbalancer.yml")
        assert addition.returncode == 0, addition.output[-4000:]
        wait_for(
            lambda: haproxy_states().get(("tfserving_rest", removed)) == "UP",
            f"{removed} back in rotation",
            60,
            interval=0.5,
        )
        time.sleep(3)
    print(f"\nHAProxy reloaded twice ({removed} out, then in) under load")
    assert RELOAD_HANDLER in removal.output and RELOAD_HANDLER in addition.output
    assert after_removal == {"tfserving_rest": {kept}, "tfserving_grpc": {kept}}
    assert _servers("tfserving_rest") == set(TFSERVING_HOSTS)
    assert _master_pid() == master, "haproxy was restarted, not reloaded"
    assert_no_failures(report, "two reloads of HAProxy")
