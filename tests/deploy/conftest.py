"""Fixtures for the deployment tests: the local box, provisioned by site.yml from the stand-in repository.

The first test that needs the box brings it up (tfstack-box up), serves the stand-in apt repository
and records it in group vars beside the box's inventory with the command `make up` uses
(`tfstack-standin-repo record`), then runs `ansible-playbook -i <inventory> site.yml` with no -e: every
run is the plain documented command. webapp_source_dir points at a snapshot of webapp/ in the box's
host vars, also beside the inventory (see recorded_vars).
The tests share that box but not an order: each asks for `converged_box`, which waits until both
services serve before the test starts, and a test that changes the box puts it back in its own
fixture's teardown (models.yml, site.yml, a restart), so any test can run alone or after any other.
The box lives as long as this folder's tests (package scope): destroyed after the last of them, its
services (Prometheus scraping every second among them) do not load the cores the later tests use.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from model_export.dataset import encode_png, load_digits_split
from tests.deploy.deploy_support import (
    BOX_HOST,
    BOX_INVENTORY,
    BOX_SSH_PORT,
    DEV_BOX,
    PlaybookRun,
    Provisioner,
    command_succeeds,
    run_command,
    wait_until_serving,
)
from tests.support.paths import REPO_ROOT, VENV_BIN

# Seconds instead of minutes, for the box's Prometheus only: scrapes and rule evaluations every second,
# rates over 20 s, and every alert firing as soon as its condition holds (tests/deploy/test_monitoring.py).
MONITORING_TEST_VARS = {
    "prometheus_scrape_interval": "1s",
    "prometheus_evaluation_interval": "1s",
    "prometheus_alert_rate_window": "20s",
    "prometheus_alert_pending_override": "0s",
}


@pytest.fixture(scope="package")
def recorded_vars(box: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """What the box's plain runs read beside its inventory: the stand-in repository, recorded by the
    command `make up` uses, and as host vars the monitoring's test timings and the web front end's
    source as it was when the session began. Others edit webapp/ in the same checkout; a snapshot keeps
    one code under test, so "a second run changes nothing" is about the roles, not about an edit made
    meanwhile. A repository server that was already running (`make up`'s) is left running afterwards."""
    was_serving = command_succeeds("tfstack-standin-repo", "status")
    run_command("tfstack-standin-repo", "record", str(box.parent))
    source = tmp_path_factory.mktemp("deploy") / "webapp"
    shutil.copytree(
        REPO_ROOT / "webapp", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    host_vars = box.parent / "host_vars" / f"{BOX_HOST}.json"
    host_vars.parent.mkdir(exist_ok=True)
    host_vars.write_text(json.dumps({"webapp_source_dir": str(source), **MONITORING_TEST_VARS}))
    yield box.parent
    if not was_serving:
        run_command("tfstack-standin-repo", "stop")


@pytest.fixture(scope="package")
def box() -> Iterator[Path]:
    if command_succeeds("tfstack-box", "status", "--name", DEV_BOX):
        print(f"\npowering off the box {DEV_BOX} (files kept) so the test box can use its ports")
        run_command("tfstack-box", "down", "--name", DEV_BOX)
    run_command("tfstack-box", "destroy", "--name", BOX_HOST)
    run_command("tfstack-box", "up", "--name", BOX_HOST, "--ssh-port", str(BOX_SSH_PORT))
    yield BOX_INVENTORY
    run_command("tfstack-box", "destroy", "--name", BOX_HOST)


@pytest.fixture(scope="package")
def provisioner(box: Path, recorded_vars: Path) -> Provisioner:
    return Provisioner(box)


@pytest.fixture(scope="package")
def first_run(provisioner: Provisioner) -> PlaybookRun:
    """site.yml on the fresh box, as `make up` runs it: whichever test needs the box first triggers it."""
    started = time.monotonic()
    run = provisioner.run("site.yml")
    print(f"\nsite.yml first run: {time.monotonic() - started:.1f} s, recap {run.recap}")
    assert run.returncode == 0, run.output[-6000:]
    return run


@pytest.fixture
def converged_box(first_run: PlaybookRun, provisioner: Provisioner) -> Provisioner:
    """The box as site.yml leaves it, serving: checked before each test, whatever ran before it."""
    wait_until_serving()
    return provisioner


@pytest.fixture(scope="package")
def host(first_run: PlaybookRun):  # -> testinfra.host.Host
    import testinfra

    # testinfra's ansible backend runs `ansible-inventory` from PATH: make it this environment's.
    if str(VENV_BIN) not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    return testinfra.get_host(f"ansible://{BOX_HOST}?ansible_inventory={BOX_INVENTORY}")


@pytest.fixture(scope="package")
def digit_pngs() -> Sequence[tuple[bytes, int]]:
    """Held-out digits (never trained on) as PNG bytes with their labels, from the model package's split."""
    split = load_digits_split()
    return [(encode_png(split.test_pixels[i]), int(split.test_labels[i])) for i in range(40)]
