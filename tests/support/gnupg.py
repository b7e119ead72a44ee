"""Throw-away GnuPG homes in tests: gpg run unattended on one, new signing keys, and stopping a home's
agent (gpg starts one for each home it uses and leaves it running, so a test done with a home stops it)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def gpg(home: Path, *args: str) -> str:
    """gpg on the GnuPG home `home`, unattended (no passphrase, no pinentry); its output. A failure
    fails the test with gpg's own message."""
    result = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass(frozen=True)
class ThrowawayKey:
    armored: str
    fingerprint: str
    expires: str  # seconds since the epoch as gpg lists it; "" for a key that never expires


def new_key(home: Path, uid: str, expiry: str = "1d", *, made_at: str | None = None) -> ThrowawayKey:
    """A new ed25519 signing key in a new GnuPG home `home`, whose agent is stopped afterwards.
    `expiry` as gpg takes it ("1d", "1y", "never"); `made_at` sets gpg's clock for the key's creation
    (e.g. "20200101T000000!"), which makes a key that has already expired."""
    home.mkdir(mode=0o700)
    clock = ["--faked-system-time", made_at] if made_at else []
    gpg(home, *clock, "--quick-gen-key", uid, "ed25519", "sign", expiry)
    armored, listing = gpg(home, "--armor", "--export", uid), gpg(home, "--with-colons", "--list-keys", uid)
    stop_agent(home)
    lines = [line.split(":") for line in listing.splitlines()]
    expires = next(fields[6] for fields in lines if fields[0] == "pub")
    fingerprint = next(fields[9] for fields in lines if fields[0] == "fpr")
    return ThrowawayKey(armored, fingerprint, expires)


def stop_agent(home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False
    )
