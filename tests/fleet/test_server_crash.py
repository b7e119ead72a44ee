"""`kill -KILL` one model server under load through HAProxy (reliability case 23): HAProxy takes it out of
rotation within its check interval x fall count, only requests in flight fail, none afterwards, and it
comes back by itself once systemd has restarted it."""

from __future__ import annotations

import time

import pytest

from tests.fleet.fleet_support import LB, haproxy_states, on_box
from tests.support.load import continuous_load, fleet_clients
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.box, pytest.mark.slow]

CHECK_INTERVAL_S, FALL = 1.0, 2  # roles/haproxy defaults


def _state(server: str) -> str:
    return haproxy_states()[("tfserving_rest", server)]


def test_a_killed_server_leaves_rotation_in_time_and_comes_back(fleet) -> None:
    victim = "fleet-tfs1"
    with continuous_load(fleet_clients(LB)) as report:
        time.sleep(3)
        killed_at = time.monotonic()
        assert on_box(victim, "systemctl kill --signal=KILL tfserving").returncode == 0
        wait_for(
            lambda: _state(victim).startswith("DOWN"), "HAProxy to mark the server DOWN", 30, interval=0.1
        )
        marked_down = time.monotonic() - killed_at
        failed_until_down = sum(report.failed.values())
        time.sleep(5)
        failed_after_down = sum(report.failed.values()) - failed_until_down
        wait_for(lambda: _state(victim) == "UP", "the restarted server back in rotation", 120, interval=0.5)
        back_after = time.monotonic() - killed_at
    print(
        f"\nkill -KILL {victim}: DOWN in HAProxy after {marked_down:.1f} s (interval x fall "
        f"{CHECK_INTERVAL_S * FALL:.0f} s), {failed_until_down} requests failed before that, "
        f"{failed_after_down} after; back UP after {back_after:.1f} s; {report.summary()}"
    )
    assert marked_down <= CHECK_INTERVAL_S * (FALL + 1) + 1, marked_down
    assert failed_after_down == 0, report.failures
