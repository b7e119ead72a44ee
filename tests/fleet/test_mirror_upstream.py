"""The mirror against a broken upstream: an expired upstream key stops the update with the reason, and
hosts installing from the mirror are unaffected."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fleet.fleet_support import on_box, playbook
from tests.support.gnupg import gpg, stop_agent

pytestmark = [pytest.mark.box, pytest.mark.slow]


def _republish(repo: Path, home: Path, fingerprint: str) -> None:
    """Signs the upstream Release again and puts the key (with its current expiry) back at its URL."""
    release = repo / "dists" / "stable" / "Release"
    signing = ("--yes", "--local-user", fingerprint)
    gpg(home, *signing, "--clearsign", "--output", str(release.with_name("InRelease")), str(release))
    gpg(
        home,
        *signing,
        "--armor",
        "--detach-sign",
        "--output",
        str(release.with_name("Release.gpg")),
        str(release),
    )
    (repo / "tensorflow-serving.release.pub.gpg").write_text(gpg(home, "--armor", "--export", fingerprint))


def test_expired_upstream_key_stops_the_mirror_and_hosts_are_unaffected(fleet, upstream_env) -> None:
    work = Path(upstream_env["TFSTACK_CACHE_DIR"]) / "standin-repo"
    repo, home = work / "repo", work / "gnupg"
    fingerprint = (repo / "tensorflow-serving.release.fingerprint").read_text().strip()
    # Upstream republishes with its key about to expire; a few seconds later it has expired.
    gpg(home, "--quick-set-expire", fingerprint, "seconds=4")
    _republish(repo, home, fingerprint)
    subprocess.run(["sleep", "5"], check=True)
    try:
        run = playbook("playbooks/mirror.yml")
        assert run.returncode != 0
        assert "has expired or was revoked" in run.output, run.output[-3000:]
        host = on_box("fleet-tfs1", "apt-get update && apt-cache policy tensorflow-model-server")
        assert host.returncode == 0 and "10.213.0.1:8090" in host.stdout, host.stdout + host.stderr
    finally:
        gpg(home, "--quick-set-expire", fingerprint, "2y")
        _republish(repo, home, fingerprint)
        stop_agent(home)  # gpg left one running on upstream's home
    again = playbook("playbooks/mirror.yml")
    assert again.returncode == 0, again.output[-3000:]
