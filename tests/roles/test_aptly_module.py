"""package_mirror_aptly, run for real: aptly mirrors a stand-in repository served on loopback, checks
upstream's signature as apt does, keeps versions upstream drops, and publishes signed with its own key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.roles.plugin_loading import run_module
from tests.support.gnupg import gpg, new_key, stop_agent
from tests.support.network import free_port
from tests.support.paths import REPO_ROOT, VENV_BIN

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("aptly") is None, reason="aptly is missing (make host-packages)"),
]
COMPONENTS = ["tensorflow-model-server", "tensorflow-model-server-universal"]


def _repo_command(env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(
        [str(VENV_BIN / "tfstack-standin-repo"), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A stand-in repository of the module's own, served on a free loopback port."""
    env = {**os.environ, "TFSTACK_CACHE_DIR": str(tmp_path_factory.mktemp("upstream-cache"))}
    port = free_port()
    _repo_command(env, "build")
    _repo_command(env, "serve", "--port", str(port))
    work = Path(env["TFSTACK_CACHE_DIR"]) / "standin-repo"
    settings = json.loads(_repo_command(env, "ansible-vars", "--port", str(port)))
    yield {
        "url": settings["tensorflow_serving_apt_repo_url"],
        "work": work,
        "env": env,
        "fingerprint": settings["tensorflow_serving_apt_key_fingerprint"],
    }
    _repo_command(env, "stop")
    stop_agent(work / "gnupg")  # the tests sign with upstream's key too


@pytest.fixture
def mirror(tmp_path: Path, upstream: dict) -> Iterator[dict]:
    """aptly's configuration, a GnuPG home with the mirror's key, upstream's key as a gpgv keyring."""
    home = tmp_path / "gnupg"
    fingerprint = new_key(home, "test mirror <mirror@localhost>", "1y").fingerprint
    config = tmp_path / "aptly.conf"
    config.write_text(json.dumps({"rootDir": str(tmp_path / "aptly"), "architectures": ["amd64"]}))
    keyring = tmp_path / "upstream.gpg"
    armored = upstream["work"] / "repo" / "tensorflow-serving.release.pub.gpg"
    gpg(home, "--yes", "--dearmor", "--output", str(keyring), str(armored))
    args = {
        "config": str(config),
        "gnupg_home": str(home),
        "upstream_url": upstream["url"],
        "upstream_keyring": str(keyring),
        "distribution": "stable",
        "components": COMPONENTS,
        "architectures": ["amd64"],
        "signing_fingerprint": fingerprint,
        "prefix": "tensorflow-serving-apt",
    }
    yield {"args": args, "home": home, "public": tmp_path / "aptly" / "public" / "tensorflow-serving-apt"}
    stop_agent(home)


def test_publishes_signed_once_and_then_changes_nothing(mirror: dict, tmp_path: Path) -> None:
    first = run_module("package_mirror", "package_mirror_aptly", mirror["args"], tmp_path)
    assert first.get("changed") is True, first
    assert sorted(first["packages"]) == COMPONENTS and all(
        len(keys) == 1 for keys in first["packages"].values()
    )
    in_release = mirror["public"] / "dists" / "stable" / "InRelease"
    keyring = tmp_path / "mirror.gpg"
    gpg(mirror["home"], "--export", "--output", str(keyring))
    check = subprocess.run(
        ["gpgv", "--keyring", str(keyring), str(in_release)], capture_output=True, check=False
    )
    assert check.returncode == 0, check.stderr
    second = run_module("package_mirror", "package_mirror_aptly", mirror["args"], tmp_path)
    assert second.get("changed") is False and second["snapshots"] == first["snapshots"], second


def test_a_key_other_than_the_pinned_one_is_refused(mirror: dict, tmp_path: Path) -> None:
    other = tmp_path / "other.gpg"
    gpg(mirror["home"], "--export", "--output", str(other))  # the mirror's own key, not upstream's
    result = run_module(
        "package_mirror", "package_mirror_aptly", {**mirror["args"], "upstream_keyring": str(other)}, tmp_path
    )
    assert result.get("failed") and "NO_PUBKEY" in result["msg"] and "not updating" in result["msg"], result


def test_a_version_upstream_drops_stays_published(mirror: dict, upstream: dict, tmp_path: Path) -> None:
    before = run_module("package_mirror", "package_mirror_aptly", mirror["args"], tmp_path)["packages"]
    source = tmp_path / "standin"
    shutil.copytree(
        REPO_ROOT / "standin", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    (source / "tfserving_standin" / "rebuilt_marker.py").write_text('"""Marks a rebuilt stand-in."""\n')
    _repo_command(
        upstream["env"], "build", "--standin-source", str(source)
    )  # upstream now has only the new one
    after = run_module("package_mirror", "package_mirror_aptly", mirror["args"], tmp_path)
    assert after.get("changed") is True, after
    for component in COMPONENTS:
        assert set(before[component]) < set(after["packages"][component]), after["packages"]
        assert len(after["packages"][component]) == 2


def _sign_release(home: Path, fingerprint: str, release: Path) -> None:
    """Signs upstream's Release again as InRelease (what the mirror checks first)."""
    in_release = str(release.with_name("InRelease"))
    gpg(home, "--yes", "--local-user", fingerprint, "--clearsign", "--output", in_release, str(release))


def test_an_expired_upstream_key_stops_the_update(mirror: dict, upstream: dict, tmp_path: Path) -> None:
    work, fingerprint = upstream["work"], upstream["fingerprint"]
    release = work / "repo" / "dists" / "stable" / "Release"
    home = work / "gnupg"
    gpg(home, "--quick-set-expire", fingerprint, "seconds=3")
    # The key as upstream now serves it, with its new expiry: what the role fetches into the keyring.
    gpg(home, "--yes", "--export", "--output", mirror["args"]["upstream_keyring"], fingerprint)
    try:
        _sign_release(home, fingerprint, release)
        time.sleep(4)
        result = run_module("package_mirror", "package_mirror_aptly", mirror["args"], tmp_path)
        assert result.get("failed") and "EXPKEYSIG" in result["msg"] and "expired" in result["msg"], result
    finally:
        gpg(home, "--quick-set-expire", fingerprint, "2y")
        _sign_release(home, fingerprint, release)
