"""kill -KILL of the model server: systemd restarts it, the models come back, and the web front end
answers 503 meanwhile, never 500 (reliability cases 6 and 7)."""

from __future__ import annotations

import time

import pytest
import requests
from deploy_support import WEB_URL, main_pid, models_available, wait_for

pytestmark = [pytest.mark.box, pytest.mark.slow]


def test_sigkill_restarts_the_server_and_models_come_back(converged_box, host) -> None:
    pid_before = main_pid(host, "tfserving.service")
    killed_at = time.monotonic()
    host.run(f"kill -KILL {pid_before}")

    web_statuses: set[int] = set()

    def recovered() -> bool:
        web_statuses.add(requests.get(f"{WEB_URL}/readyz", timeout=15).status_code)
        pid = main_pid(host, "tfserving.service")
        if pid in (0, pid_before):
            return False
        return models_available("digits", "half_plus_two")

    wait_for(recovered, timeout=180, interval=0.5, what="tfserving to restart with its models")
    elapsed = time.monotonic() - killed_at
    print(f"models AVAILABLE again {elapsed:.1f} s after SIGKILL; /readyz said {sorted(web_statuses)}")
    assert host.service("tfserving.service").is_running
    # While the server was down the front end said so (503), and it recovered by itself (200).
    assert web_statuses <= {200, 503}, web_statuses
    wait_for(lambda: requests.get(f"{WEB_URL}/readyz", timeout=15).status_code == 200, 60, what="/readyz 200")
