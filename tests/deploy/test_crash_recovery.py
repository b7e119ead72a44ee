"""kill -KILL of the model server: systemd restarts it, the models come back, and the web front end
answers 503 meanwhile, never 500 (reliability cases 6 and 7)."""

from __future__ import annotations

import time

import pytest
import requests

from tests.deploy.deploy_support import (
    MODELS,
    NOT_YET,
    SERVER_UNIT,
    WEB_URL,
    main_pid,
    models_available,
    wait_until_serving,
    web_ready,
)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.box, pytest.mark.slow]


@pytest.fixture
def serving_again(converged_box):
    """Whatever the test saw, the next one finds both services serving again."""
    yield
    wait_until_serving()


def test_sigkill_restarts_the_server_and_models_come_back(host, serving_again) -> None:
    pid_before = main_pid(host)
    killed_at = time.monotonic()
    host.run(f"kill -KILL {pid_before}")

    web_statuses: set[int] = set()

    def recovered() -> bool:
        web_statuses.add(requests.get(f"{WEB_URL}/readyz", timeout=15).status_code)
        pid = main_pid(host)
        if pid in (0, pid_before):
            return False
        return models_available(*MODELS)

    wait_for(recovered, "tfserving to restart with its models", 180, interval=0.5, tolerate=NOT_YET)
    elapsed = time.monotonic() - killed_at
    print(f"models AVAILABLE again {elapsed:.1f} s after SIGKILL; /readyz said {sorted(web_statuses)}")
    assert host.service(SERVER_UNIT).is_running
    # While the server was down the front end said so (503), and it recovered by itself (200).
    assert web_statuses <= {200, 503}, web_statuses
    wait_for(web_ready, "/readyz 200", 60, interval=1.0, tolerate=NOT_YET)
