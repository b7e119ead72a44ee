"""The converged fleet, host by host (testinfra), a second converge, and where the packages came from.

The hosts on the private network have no route beyond it: everything they installed came from the
package mirror, and the TF Serving hosts answer on 8500/8501 only to the load balancer and web hosts.
"""

from __future__ import annotations

import pytest
import requests
import yaml

from tests.fleet.fleet_support import (
    LB,
    TFSERVING_HOSTS,
    WEB_HOSTS,
    command,
    haproxy_states,
    on_box,
    playbook,
)
from tests.support.paths import REPO_ROOT

pytestmark = [pytest.mark.box, pytest.mark.slow]

MIRROR_URL = "http://10.213.0.1:8090"
# The play of playbooks/tfserving.yml that applies the role (the one before it only reads the unit's state).
TFSERVING_PLAY = next(
    play["name"]
    for play in yaml.safe_load((REPO_ROOT / "playbooks" / "tfserving.yml").read_text())
    if "roles" in play
)


@pytest.mark.parametrize("name", sorted(TFSERVING_HOSTS))
def test_tfserving_hosts_run_the_server_from_the_mirror(fleet_host, name: str) -> None:
    host = fleet_host(name)
    assert host.service("tfserving").is_running
    assert host.socket("tcp://0.0.0.0:8501").is_listening
    assert host.socket("tcp://0.0.0.0:8500").is_listening
    policy = host.check_output("apt-cache policy tensorflow-model-server tensorflow-model-server-universal")
    assert f"{MIRROR_URL}/tensorflow-serving-apt stable" in policy, policy
    sources = host.check_output(
        "grep -rh '^URIs:\\|^deb ' /etc/apt/sources.list.d/tensorflow-serving.sources"
    )
    assert sources.split() == ["URIs:", f"{MIRROR_URL}/tensorflow-serving-apt"], sources
    # The stand-in's Python runtime came from the wheelhouse, never from PyPI.
    pip_settings = host.file("/etc/default/tensorflow-model-server-standin").content_string
    assert f"PIP_FIND_LINKS={MIRROR_URL}/wheels/" in pip_settings, pip_settings
    assert "PIP_NO_INDEX=1" in pip_settings, pip_settings


@pytest.mark.parametrize("name", sorted({**TFSERVING_HOSTS, **WEB_HOSTS, "fleet-lb": LB}))
def test_private_hosts_have_no_route_out(fleet_host, name: str) -> None:
    routes = fleet_host(name).check_output("ip -4 route show")
    assert "default" not in routes, routes
    assert routes.split()[0] == "10.213.0.0/24", routes


def test_load_balancer_runs_haproxy_with_every_server_up(fleet_host) -> None:
    host = fleet_host("fleet-lb")
    assert host.service("haproxy").is_running
    assert host.user("haproxy").shell in ("/usr/sbin/nologin", "/bin/false")
    assert {process.user for process in host.process.filter(comm="haproxy")} == {"haproxy"}
    exposure = host.check_output("systemd-analyze security haproxy | tail -1")
    assert float(exposure.split()[-3]) <= 2.0, exposure
    states = haproxy_states()
    assert {state for (backend, _), state in states.items() if backend.startswith("tfserving_")} == {"UP"}, (
        states
    )
    metrics = requests.get(f"http://{LB}:8405/metrics", timeout=10)
    assert metrics.status_code == 200 and "haproxy_server_status" in metrics.text


def test_web_host_reaches_tf_serving_through_the_load_balancer(fleet_host) -> None:
    env = fleet_host("fleet-web1").file("/etc/tfserving-web/tfserving-web.env").content_string
    assert f"TFWEB_TFSERVING_REST_URL=http://{LB}:8501" in env, env
    answer = requests.get(f"http://{LB}:8080/readyz", timeout=15)
    assert answer.status_code == 200, answer.text


def test_a_fresh_fleet_converges_its_model_servers_at_once(fleet) -> None:
    # No host ran TF Serving before the first site.yml: no traffic to lose, so one batch of every host.
    assert fleet.batches(TFSERVING_PLAY) == 1, fleet.output[-4000:]


def test_second_converge_changes_nothing(fleet) -> None:
    run = playbook("site.yml")
    assert run.returncode == 0, run.output[-4000:]
    changed = {host: recap["changed"] for host, recap in run.recaps().items()}
    assert set(changed.values()) == {0}, (changed, run.changed_tasks())
    # Every TF Serving host serves now: one at a time, so a bad change stops at the first.
    assert run.batches(TFSERVING_PLAY) == len(TFSERVING_HOSTS), run.output[-4000:]


def test_model_servers_answer_only_the_load_balancer_and_web_hosts(fleet) -> None:
    outsider = "fleet-outsider"
    command("tfstack-box", "up", "--name", outsider, "--address", "10.213.0.99")
    try:
        probe = (
            "python3 -c 'import socket, sys\n"
            "for port in (8500, 8501):\n"
            '    try: socket.create_connection((sys.argv[1], port), timeout=3); print(port, "open")\n'
            '    except OSError as error: print(port, "refused", error)\' {}'
        )
        for address in TFSERVING_HOSTS.values():
            from_outside = on_box(outsider, probe.format(address)).stdout
            assert "open" not in from_outside, from_outside
            from_lb = on_box("fleet-lb", probe.format(address)).stdout
            assert from_lb.count("open") == 2, from_lb
    finally:
        command("tfstack-box", "destroy", "--name", outsider)
