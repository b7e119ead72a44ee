"""The repository's indexes and signatures, in the layout of TF Serving's own repository.

One component per build of the server (dists/stable/<package>/binary-amd64/Packages{,.gz}), a Release
file signed twice (InRelease and Release.gpg) with a throw-away key, the key's ASCII-armored public half
at the root under upstream's name, and its fingerprint next to it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from standin_repo.common import ARCH, FINGERPRINT_NAME, KEY_NAME, PACKAGES, SUITE, run, say

KEY_UID = "tfserving-stack stand-in repository (TEST ONLY) <standin@localhost>"


def gpg_env(home: Path) -> dict[str, str]:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return {**os.environ, "GNUPGHOME": str(home)}


def ensure_signing_key(home: Path) -> str:
    """The key's fingerprint; made on the spot the first time, then kept so the boxes' keyrings stay valid."""
    env = gpg_env(home)
    listing = run("gpg", "--batch", "--with-colons", "--list-secret-keys", env=env)
    fingerprints = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
    if fingerprints:
        return fingerprints[0]
    say("making a throw-away signing key")
    run("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", KEY_UID,
        "ed25519", "sign", "2y", env=env)  # fmt: skip
    return ensure_signing_key(home)


def index_component(repo: Path, package: str) -> None:
    """Packages and Packages.gz of the component named after the package, for pool/<package>/."""
    index_dir = repo / "dists" / SUITE / package / f"binary-{ARCH}"
    index_dir.mkdir(parents=True)
    # Run from the repository root so the Filename: fields are relative to it.
    (index_dir / "Packages").write_text(run("apt-ftparchive", "packages", f"pool/{package}", cwd=repo))
    run("gzip", "-9kn", index_dir / "Packages")


def write_release(repo: Path) -> Path:
    release = run(
        "apt-ftparchive",
        "-o", f"APT::FTPArchive::Release::Suite={SUITE}",
        "-o", f"APT::FTPArchive::Release::Codename={SUITE}",
        "-o", f"APT::FTPArchive::Release::Components={' '.join(PACKAGES)}",
        "-o", f"APT::FTPArchive::Release::Architectures={ARCH}",
        "-o", "APT::FTPArchive::Release::Label=tfserving-stack stand-in (TEST ONLY)",
        "release", f"dists/{SUITE}",
        cwd=repo,
    )  # fmt: skip
    release_path = repo / "dists" / SUITE / "Release"
    release_path.write_text(release)
    return release_path


def sign_release(repo: Path, release_path: Path, home: Path, fingerprint: str) -> None:
    """InRelease and Release.gpg, plus the public key and its fingerprint at the repository root."""
    env = gpg_env(home)
    sign = ("gpg", "--batch", "--yes", "--local-user", fingerprint)
    run(*sign, "--clearsign", "--output", release_path.with_name("InRelease"), release_path, env=env)
    run(*sign, "--armor", "--detach-sign", "--output", release_path.with_name("Release.gpg"), release_path,
        env=env)  # fmt: skip
    (repo / KEY_NAME).write_text(run("gpg", "--batch", "--armor", "--export", fingerprint, env=env))
    # gpg started an agent for this GNUPGHOME; stop it so a build leaves no daemon behind.
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False, capture_output=True)
    (repo / FINGERPRINT_NAME).write_text(fingerprint + "\n")
