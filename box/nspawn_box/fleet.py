"""A fleet of boxes: a load balancer, TF Serving hosts and web hosts on the private network, and a
package mirror that shares this machine's network (so it reaches upstream, Debian and PyPI while the
others reach nothing but the mirror and each other).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import lifecycle, network
from .errors import BoxError
from .settings import Box, project_box_dir

MIRROR_HTTP_PORT = 8090
MIRROR_OS_PROXY_PORT = 3142
MIRROR_SSH_PORT = 2240
MIRROR_KEY_UID = "tfserving-stack fleet package mirror (TEST ONLY) <fleet-mirror@localhost>"


@dataclass(frozen=True)
class Member:
    """One box of the fleet and the inventory groups it is in."""

    name: str
    groups: tuple[str, ...]
    address: str | None = None  # None: on this machine's network
    ssh_port: int | None = None

    def box(self) -> Box:
        return lifecycle.resolve_box(self.name, self.ssh_port, self.address)


def members(tfserving_hosts: int = 2, web_hosts: int = 1) -> list[Member]:
    """The fleet's boxes; addresses by role: .10 load balancer, .11- TF Serving, .21- web."""
    if not 1 <= tfserving_hosts <= 9 or not 1 <= web_hosts <= 9:
        raise BoxError("a fleet has 1 to 9 TF Serving hosts and 1 to 9 web hosts")
    fleet = [
        Member("fleet-mirror", ("mirror",), ssh_port=MIRROR_SSH_PORT),
        Member("fleet-lb", ("loadbalancer",), address="10.213.0.10"),
    ]
    fleet += [
        Member(f"fleet-tfs{i}", ("tfserving",), address=f"10.213.0.{10 + i}")
        for i in range(1, tfserving_hosts + 1)
    ]
    fleet += [
        Member(f"fleet-web{i}", ("webapp",), address=f"10.213.0.{20 + i}") for i in range(1, web_hosts + 1)
    ]
    return fleet


def fleet_dir() -> Path:
    return project_box_dir() / "fleet"


@dataclass(frozen=True)
class MirrorSite:
    """A package mirror box: where its inventory, vars and signing key live on this machine, and how
    the hosts that install from it reach it."""

    directory: Path
    host: str  # the mirror's address as those hosts see it
    http_port: int = MIRROR_HTTP_PORT
    os_proxy_port: int = MIRROR_OS_PROXY_PORT

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def client_vars(self, fingerprint: str) -> dict[str, str]:
        """The settings of the hosts that install everything from it (what the role prints)."""
        return {
            "tensorflow_serving_apt_repo_url": f"{self.url}/tensorflow-serving-apt",
            "tensorflow_serving_apt_key_url": f"{self.url}/tensorflow-serving-apt/package-mirror.pub.gpg",
            "tensorflow_serving_apt_key_fingerprint": fingerprint,
            "service_common_apt_proxy": f"http://{self.host}:{self.os_proxy_port}",
            "service_common_wheelhouse_url": f"{self.url}/wheels/",
        }


def fleet_site() -> MirrorSite:
    """The fleet's mirror: the boxes on the private network reach it at this machine's bridge address."""
    return MirrorSite(fleet_dir(), str(network.HOST_ADDRESS))


def signing_key(directory: Path) -> tuple[str, str]:
    """(armored secret key, fingerprint) of a mirror's signing key, made once and kept in directory.

    Supplied to the mirror like an organisation's own key, so its fingerprint can be pinned in the
    hosts' settings before the mirror exists.
    """
    secret, fingerprint_file = (
        directory / "mirror-signing-key.asc",
        directory / "mirror-signing-key.fingerprint",
    )
    if not (secret.is_file() and fingerprint_file.is_file()):
        _make_signing_key(secret, fingerprint_file)
    return secret.read_text(), fingerprint_file.read_text().strip()


def _gpg(home: str, *argv: str) -> str:
    result = subprocess.run(
        ["gpg", "--homedir", home, "--batch", *argv], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BoxError(f"{' '.join(argv[:9])} failed: {result.stderr.strip()}")
    return result.stdout


def _make_signing_key(secret: Path, fingerprint_file: Path) -> None:
    with tempfile.TemporaryDirectory() as home:
        _gpg(
            home,
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            MIRROR_KEY_UID,
            "ed25519",
            "sign",
            "2y",
        )
        listing = _gpg(home, "--with-colons", "--list-secret-keys")
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        armored = _gpg(
            home,
            "--armor",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--export-secret-keys",
            fingerprint,
        )
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False, capture_output=True)
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.touch(mode=0o600)
    secret.write_text(armored)
    fingerprint_file.write_text(fingerprint + "\n")


def read_upstream(path: Path) -> dict[str, str]:
    """The stand-in repository's role variables (tfstack-standin-repo ansible-vars), the mirror's upstream."""
    try:
        upstream = json.loads(path.read_text())
        return {
            key: str(upstream[key])
            for key in ("tensorflow_serving_apt_repo_url", "tensorflow_serving_apt_key_fingerprint")
        }
    except (OSError, ValueError, KeyError) as error:
        raise BoxError(f"cannot read the upstream settings in {path}: {error}") from None


def up(fleet: list[Member], boot_timeout: float) -> None:
    started = time.monotonic()
    for member in fleet:
        lifecycle.up(member.box(), boot_timeout)
    print(f"fleet: {len(fleet)} boxes up in {time.monotonic() - started:.1f} s", flush=True)


def down(fleet: list[Member], stop_timeout: float) -> None:
    for member in fleet:
        lifecycle.down(member.box(), stop_timeout)


def destroy(fleet: list[Member], stop_timeout: float) -> None:
    for member in fleet:
        lifecycle.destroy(member.box(), stop_timeout)
    for path in sorted(fleet_dir().rglob("*"), reverse=True) if fleet_dir().is_dir() else []:
        path.rmdir() if path.is_dir() else path.unlink()
    if fleet_dir().is_dir():
        fleet_dir().rmdir()


def status(fleet: list[Member]) -> int:
    codes = [lifecycle.status(member.box()) for member in fleet]
    return 0 if all(code == 0 for code in codes) else 3


def environment_cache_dir() -> Path:
    return Path(os.environ.get("TFSTACK_CACHE_DIR") or "/var/cache/tfserving-stack")
