"""Changes rolled through the fleet under continuous load through HAProxy (REST, gRPC and the web front
end), each client counting every non-200 answer and exception: 0 failed requests (reliability cases 21,
22 and 24). Every load is bounded in requests and time and goes only to the load balancer's address.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.fleet.conftest import models_from, newest_version
from tests.fleet.fleet_support import (
    LB,
    TFSERVING_HOSTS,
    assert_no_failures,
    command,
    installed_version,
    on_box,
    playbook,
)
from tests.support.load import continuous_load, fleet_clients

pytestmark = [pytest.mark.box, pytest.mark.slow]


def test_rolling_restart_of_every_model_server_loses_no_request(fleet) -> None:
    pids_before = {
        name: on_box(name, "systemctl show -p MainPID --value tfserving").stdout for name in TFSERVING_HOSTS
    }
    started = time.monotonic()
    with continuous_load(fleet_clients(LB)) as report:
        run = playbook("playbooks/rolling-update.yml", extra_vars={"rolling_update_restart": True})
    took = time.monotonic() - started
    assert run.returncode == 0, run.output[-4000:]
    hosts = len(TFSERVING_HOSTS)
    print(f"\nrolling restart of {hosts} hosts: {took:.0f} s ({took / hosts:.0f} s per host)")
    assert_no_failures(report, "rolling restart")
    for name, before in pids_before.items():
        assert on_box(name, "systemctl show -p MainPID --value tfserving").stdout != before, (
            f"{name} not restarted"
        )


def test_rolling_upgrade_to_a_new_package_loses_no_request(fleet, upstream_env, tmp_path: Path) -> None:
    old = installed_version("fleet-tfs1")
    # A changed stand-in source makes the upstream repository publish a newer version (and drop the old).
    source = tmp_path / "standin"
    shutil.copytree("standin", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    (source / "tfserving_standin" / "upgrade_marker.py").write_text('"""Marks a rebuilt stand-in."""\n')
    command("tfstack-standin-repo", "build", "--standin-source", str(source), env=upstream_env)
    mirror = playbook("playbooks/mirror.yml")
    assert mirror.returncode == 0, mirror.output[-4000:]
    available = on_box("fleet-tfs1", "apt-get update -qq && apt-cache madison tensorflow-model-server").stdout
    versions = [line.split("|")[1].strip() for line in available.splitlines()]
    assert old in versions and len(versions) == 2, available
    new = max(versions, key=lambda version: version != old)

    with continuous_load(fleet_clients(LB)) as report:
        run = playbook("playbooks/rolling-update.yml", extra_vars={"tensorflow_serving_package_version": new})
    assert run.returncode == 0, run.output[-4000:]
    assert_no_failures(report, "rolling upgrade")
    assert {installed_version(name) for name in TFSERVING_HOSTS} == {new}
    # Upstream has only the new version now; the mirror kept the old one, so a pin to it still installs.
    back = playbook(
        "playbooks/rolling-update.yml",
        "--limit",
        "fleet-tfs1",
        extra_vars={"tensorflow_serving_package_version": old},
    )
    assert back.returncode == 0, back.output[-4000:]
    assert installed_version("fleet-tfs1") == old
    # Only fleet-tfs1 went back. The fleet's later tests run on these two versions side by side, as a
    # fleet does halfway through an upgrade (restoring one would cost another host's rolling update).
    assert installed_version("fleet-tfs2") == new


def test_model_rollout_loses_no_request(fleet, digits_source: Path) -> None:
    current = newest_version(digits_source)
    shutil.copytree(digits_source / str(current), digits_source / str(current + 1))
    with continuous_load(fleet_clients(LB)) as report:
        run = playbook("playbooks/models.yml", extra_vars=models_from(digits_source))
    assert run.returncode == 0, run.output[-4000:]
    assert_no_failures(report, "model rollout")
    for name in TFSERVING_HOSTS:
        # The boxes have python3, not curl.
        url = "http://127.0.0.1:8501/v1/models/digits"
        status = on_box(
            name,
            f"python3 -c 'import urllib.request; print(urllib.request.urlopen(\"{url}\").read().decode())'",
        ).stdout
        assert f'"version": "{current + 1}"' in status and "AVAILABLE" in status, status


def test_corrupt_version_stops_at_the_first_host(fleet, digits_source: Path) -> None:
    good = newest_version(digits_source)
    bad = good + 1
    shutil.copytree(digits_source / str(good), digits_source / str(bad))
    saved_model = digits_source / str(bad) / "saved_model.pb"
    saved_model.write_bytes(saved_model.read_bytes()[:100])  # truncated, as a half-finished copy
    with continuous_load(fleet_clients(LB)) as report:
        run = playbook(
            "playbooks/models.yml",
            extra_vars={**models_from(digits_source), "tensorflow_serving_health_timeout": 30},
        )
    assert run.returncode != 0, "a corrupt version must fail the rollout"
    first, second = sorted(TFSERVING_HOSTS)
    assert run.recaps()[first]["failed"] == 1, run.recaps()
    assert second not in run.recaps() or run.recaps()[second]["changed"] == 0, run.recaps()
    assert on_box(second, f"test -e /srv/tfserving/models/digits/{bad}").returncode != 0, (
        f"{second} got the bad version"
    )
    assert_no_failures(report, "corrupt rollout")
