"""The test fleet, brought up once for this folder's tests as `make fleet-up` does, and destroyed after
the last of them (package scope), so its boxes do not load the cores while other folders' tests run.

A package mirror on this machine's network; a load balancer, two TF Serving hosts and a web host on the
private network 10.213.0.0/24, which get every package from the mirror. The mirror's upstream is a
stand-in repository of the tests' own (its own cache folder and port 8098).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.fleet_support import UPSTREAM_PORT, command, playbook
from tests.support.paths import REPO_ROOT
from tests.support.playbooks import PlaybookRun

pytestmark = [pytest.mark.box, pytest.mark.slow]


@pytest.fixture(scope="package")
def upstream_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment of the upstream repository's commands: its own cache folder."""
    cache = Path(os.environ.get("TFSTACK_CACHE_DIR") or "/var/cache/tfserving-stack") / "fleet-upstream"
    return {**os.environ, "TFSTACK_CACHE_DIR": str(cache)}


@pytest.fixture(scope="package")
def upstream(upstream_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The stand-in repository, served on 127.0.0.1:8098, as the mirror's upstream; its settings file."""
    command("tfstack-standin-repo", "build", env=upstream_env)
    command("tfstack-standin-repo", "serve", "--port", str(UPSTREAM_PORT), env=upstream_env)
    settings = tmp_path_factory.mktemp("fleet") / "upstream.json"
    settings.write_text(
        command("tfstack-standin-repo", "ansible-vars", "--port", str(UPSTREAM_PORT), env=upstream_env)
    )
    yield settings
    command("tfstack-standin-repo", "stop", env=upstream_env)


@pytest.fixture(scope="package")
def fleet(upstream: Path) -> Iterator[PlaybookRun]:
    """The fleet converged by site.yml from nothing; the first run's output."""
    command("tfstack-fleet", "destroy")
    started = time.monotonic()
    command("tfstack-fleet", "up", "--upstream", str(upstream))
    booted = time.monotonic() - started
    run = playbook("site.yml")
    converged = time.monotonic() - started - booted
    print(f"\nfleet: boxes up in {booted:.0f} s, site.yml from nothing in {converged:.0f} s: {run.recaps()}")
    assert run.returncode == 0, run.output[-6000:]
    yield run
    command("tfstack-fleet", "destroy")


@pytest.fixture
def digits_source(tmp_path: Path, fleet: PlaybookRun) -> Iterator[Path]:
    """A copy of serving_model/digits to add versions to; the fleet gets serving_model/'s versions back."""
    source = tmp_path / "digits"
    shutil.copytree(REPO_ROOT / "serving_model" / "digits", source)
    yield source
    restore = playbook("playbooks/models.yml")
    assert restore.returncode == 0, restore.output[-4000:]


def models_from(digits_source: Path) -> dict:
    """The models of group_vars/tfserving.yml with digits read from another folder."""
    return {
        "tensorflow_serving_models": [
            {"name": "digits", "source": str(digits_source)},
            {"name": "half_plus_two", "source": str(REPO_ROOT / "serving_model" / "half_plus_two")},
        ]
    }


def newest_version(source: Path) -> int:
    return max(int(path.name) for path in source.iterdir() if path.name.isdigit())


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="package")
def fleet_host(fleet: PlaybookRun):
    """testinfra's view of one fleet host by inventory name."""
    import testinfra

    from tests.fleet.fleet_support import FLEET_INVENTORY
    from tests.support.paths import VENV_BIN

    # testinfra's ansible backend runs `ansible-inventory` from PATH: make it this environment's.
    if str(VENV_BIN) not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    return lambda name: testinfra.get_host(f"ansible://{name}?ansible_inventory={FLEET_INVENTORY}")
