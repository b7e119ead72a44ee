"""The `build` command: both packages, indexed and signed, swapped in whole; nothing when unchanged."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from standin_repo import archive, package
from standin_repo.common import PACKAGES, SUITE, RepoError, repo_dir, say, work_dir
from standin_repo.sources import Sources

# Upstream-looking version with a suffix that says what this is; the build time makes every rebuild
# a newer version, so `apt-get upgrade` on a box picks up a changed stand-in.
UPSTREAM_VERSION = "2.21.0"
TOOLS = ("dpkg-deb", "apt-ftparchive", "gpg")


def build(sources: Sources) -> None:
    sources = sources.checked()
    digest = sources.digest(UPSTREAM_VERSION)
    stamp = work_dir() / "source.sha256"
    repo = repo_dir()
    if (repo / "dists" / SUITE / "InRelease").is_file() and stamp.is_file() and stamp.read_text() == digest:
        say(f"{repo} is up to date")
        return
    for tool in TOOLS:
        if shutil.which(tool) is None:
            raise RepoError(f"{tool} is missing; run scripts/install-host-packages")
    started = time.monotonic()
    home = work_dir() / "gnupg"
    fingerprint = archive.ensure_signing_key(home)
    fresh = work_dir() / "repo.new"
    shutil.rmtree(fresh, ignore_errors=True)
    _build_packages(sources, fresh)
    release = archive.write_release(fresh)
    archive.sign_release(fresh, release, home, fingerprint)
    _swap_in(fresh, repo)
    stamp.write_text(digest)
    say(f"built {repo} in {time.monotonic() - started:.1f} s, key {fingerprint}")


def _build_packages(sources: Sources, repo: Path) -> None:
    """One wheel, two packages carrying it, each in its own pool folder and component (official layout)."""
    version = f"{UPSTREAM_VERSION}+standin{int(time.time())}"
    with tempfile.TemporaryDirectory() as staging:
        wheel = package.build_wheel(sources, Path(staging) / "wheel")
        for name in PACKAGES:
            pool = repo / "pool" / name
            pool.mkdir(parents=True)
            package.build_deb(name, version, sources, wheel, Path(staging), pool)
            archive.index_component(repo, name)


def _swap_in(fresh: Path, repo: Path) -> None:
    """Replaces the repository by the finished one: a server running from it never serves half a build."""
    old = repo.with_name("repo.old")
    shutil.rmtree(old, ignore_errors=True)
    if repo.exists():
        repo.rename(old)
    fresh.rename(repo)
    shutil.rmtree(old, ignore_errors=True)
