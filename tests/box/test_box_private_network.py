"""Boxes on the project's private network: each in its own namespace, reachable by address, fenced in.

Two boxes boot with --address on the bridge tfstack0 (10.213.0.0/24). Every connection these tests
make targets 10.213.0.x addresses the project gave its own boxes, or this machine's bridge address.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from nspawn_box import network
from tests.box.box_support import TEST_BOX_NAME, box_ssh, needs_root_and_nspawn, run_box
from tests.support.network import accepts

pytestmark = [pytest.mark.box, pytest.mark.slow, needs_root_and_nspawn]

BOXES = {f"{TEST_BOX_NAME}-net1": "10.213.0.241", f"{TEST_BOX_NAME}-net2": "10.213.0.242"}


@pytest.fixture(scope="module", autouse=True)
def two_boxes() -> Iterator[None]:
    for name, address in BOXES.items():
        run_box("destroy", name=name)
        result = run_box("up", "--address", address, name=name)
        assert result.returncode == 0, result.stderr
    yield
    for name in BOXES:
        run_box("destroy", name=name)


def test_this_machine_reaches_each_box_by_address() -> None:
    for address in BOXES.values():
        assert accepts(address, 22, timeout=3), f"sshd of the box at {address}:22 does not answer"


def test_each_box_has_its_address_and_no_route_out() -> None:
    for name, address in BOXES.items():
        result = box_ssh("ip -4 -brief address show dev eth0; ip -4 route show", name=name)
        assert result.returncode == 0, result.stderr
        assert f"{address}/24" in result.stdout
        routes = [line for line in result.stdout.splitlines() if line.startswith(("default", "10.", "0."))]
        # Only the link route of the private network: nothing beyond it is routable from the box.
        assert [route.split()[0] for route in routes if "dev" in route] == ["10.213.0.0/24"], result.stdout
        assert "default" not in result.stdout


def test_boxes_reach_each_other_and_listen_on_the_same_port() -> None:
    (first, first_address), (second, second_address) = BOXES.items()
    probe = "python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], 22), timeout=3)' {}"
    assert box_ssh(probe.format(second_address), name=first).returncode == 0
    assert box_ssh(probe.format(first_address), name=second).returncode == 0
    # Both listen on port 22 of their own address; neither holds a port of this machine.
    for name, address in BOXES.items():
        listening = box_ssh("ss -Hltn", name=name).stdout
        assert f"{address}:22" in listening, listening


def test_an_address_in_use_is_refused() -> None:
    taken = next(iter(BOXES.values()))
    result = run_box("up", "--address", taken, name=f"{TEST_BOX_NAME}-net3")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"box: address {taken} belongs to the box {next(iter(BOXES))}; pick another"
    ]


def test_destroy_removes_the_namespace_and_its_link() -> None:
    name = f"{TEST_BOX_NAME}-net4"
    assert run_box("up", "--address", "10.213.0.244", name=name).returncode == 0
    assert os.path.exists(f"/run/netns/tfstack-{name}")
    assert run_box("destroy", name=name).returncode == 0
    assert not os.path.exists(f"/run/netns/tfstack-{name}")
    veth = subprocess.run(
        ["ip", "link", "show", "dev", network.host_veth(name)], capture_output=True, check=False
    )
    assert veth.returncode != 0, "the host side of the box's veth pair is still there"
    assert not accepts("10.213.0.244", 22, timeout=1)
