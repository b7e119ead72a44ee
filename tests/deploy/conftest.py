"""Fixtures for the deployment tests: the local box, provisioned by site.yml from the stand-in repository.

The first test that asks for `converged_box` brings the box up (scripts/box up), serves the stand-in
apt repository (scripts/standin-repo) and runs `ansible-playbook site.yml` against the box, the same
path `make up` takes. Later tests reuse that box; the files are numbered to run in order, since the
rollout and crash tests change what the box serves (and put it back).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from deploy_support import (
    BOX_HOST,
    BOX_INVENTORY,
    BOX_SSH_PORT,
    DEV_BOX,
    REPO_ROOT,
    PlaybookRun,
    Provisioner,
    run_script,
)


@pytest.fixture(scope="session")
def standin_repo_vars(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Serve the local signed stand-in repository and return an extra-vars file pointing the role at it.
    A server that was already running (`make up`'s) is left running afterwards."""
    repo_script = str(REPO_ROOT / "scripts/standin-repo")
    was_serving = subprocess.run([repo_script, "status"], capture_output=True, check=False)
    run_script("scripts/standin-repo", "build")
    run_script("scripts/standin-repo", "serve")
    settings = json.loads(run_script("scripts/standin-repo", "ansible-vars").stdout)
    path = tmp_path_factory.mktemp("deploy") / "standin-repo.json"
    path.write_text(json.dumps(settings))
    yield path
    if was_serving.returncode != 0:
        run_script("scripts/standin-repo", "stop")


@pytest.fixture(scope="session")
def box() -> Iterator[Path]:
    box_script = str(REPO_ROOT / "scripts/box")
    dev_box = subprocess.run([box_script, "status", "--name", DEV_BOX], capture_output=True, check=False)
    if dev_box.returncode == 0:
        print(f"\npowering off the box {DEV_BOX} (files kept) so the test box can use its ports")
        run_script("scripts/box", "down", "--name", DEV_BOX)
    run_script("scripts/box", "destroy", "--name", BOX_HOST)
    run_script("scripts/box", "up", "--name", BOX_HOST, "--ssh-port", str(BOX_SSH_PORT))
    yield BOX_INVENTORY
    run_script("scripts/box", "destroy", "--name", BOX_HOST)


@pytest.fixture(scope="session")
def provisioner(box: Path, standin_repo_vars: Path) -> Provisioner:
    return Provisioner(standin_repo_vars)


@pytest.fixture(scope="session")
def first_run(provisioner: Provisioner) -> PlaybookRun:
    """site.yml on the box, as `make up` runs it."""
    started = time.monotonic()
    run = provisioner.run("site.yml")
    print(f"\nsite.yml first run: {time.monotonic() - started:.1f} s, recap {run.recap}")
    assert run.returncode == 0, run.output[-6000:]
    return run


@pytest.fixture(scope="session")
def converged_box(first_run: PlaybookRun, provisioner: Provisioner) -> Provisioner:
    return provisioner


@pytest.fixture(scope="session")
def host(converged_box: Provisioner):  # -> testinfra.host.Host
    import testinfra

    return testinfra.get_host(f"ansible://{BOX_HOST}?ansible_inventory={BOX_INVENTORY}")


@pytest.fixture(scope="session")
def digit_pngs() -> Iterator[Sequence[tuple[bytes, int]]]:
    """Held-out digits (never trained on) as PNG bytes with their labels."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        from model_export.dataset import encode_png, load_digits_split
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    split = load_digits_split()
    yield [(encode_png(split.test_pixels[i]), int(split.test_labels[i])) for i in range(40)]
