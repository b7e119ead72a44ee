"""The project's private test network: a bridge on this machine and one network namespace per box.

A box given an address (`tfstack-box up --address 10.213.0.11`) boots in a network namespace of its
own, joined to the bridge `tfstack0` by a veth pair, so several boxes can each listen on 8500/8501 and a
fence between hosts can be shown. This machine has 10.213.0.1 on the bridge and reaches every box by
address; the boxes get no default route, so they reach nothing but each other and this machine's
bridge address: no other private or public address is routable from them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import subprocess
from pathlib import Path

from .errors import BoxError

BRIDGE = "tfstack0"
NETWORK = ipaddress.ip_network("10.213.0.0/24")
# This machine's address on the bridge: what boxes use to reach services the host serves to them.
HOST_ADDRESS = ipaddress.ip_address("10.213.0.1")
NETNS_DIR = Path("/run/netns")


def check_address(text: str) -> str:
    """The address as a string when it is one the project may give a box, else a one-line error."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise BoxError(f"--address {text!r} is not an IPv4 address") from None
    usable = set(NETWORK.hosts()) - {HOST_ADDRESS}
    if address not in usable:
        raise BoxError(
            f"--address {text} is outside the project's test network: use {NETWORK[2]}-{NETWORK[-2]}"
        )
    return str(address)


def netns_name(box_name: str) -> str:
    return f"tfstack-{box_name}"


def netns_path(box_name: str) -> Path:
    return NETNS_DIR / netns_name(box_name)


def host_veth(box_name: str) -> str:
    # Interface names are at most 15 characters; box names may be up to 40, so use a digest.
    return "vt" + hashlib.sha256(box_name.encode()).hexdigest()[:12]


def _ip(*argv: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["ip", *(["-n", netns] if netns else []), *argv]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise BoxError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result


def _link_exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


def ensure_bridge() -> None:
    """Creates the bridge with this machine's address on it, once; later calls change nothing."""
    if not _link_exists(BRIDGE):
        _ip("link", "add", "name", BRIDGE, "type", "bridge")
    host_cidr = f"{HOST_ADDRESS}/{NETWORK.prefixlen}"
    if host_cidr not in _ip("-brief", "address", "show", "dev", BRIDGE).stdout.split():
        _ip("address", "add", host_cidr, "dev", BRIDGE)
    _ip("link", "set", "dev", BRIDGE, "up")


def attach(box_name: str, address: str) -> Path:
    """The box's namespace with its address on eth0, joined to the bridge; returns its path for nspawn.

    Made afresh at every boot, so an address changed with `up --address` applies and nothing stale
    stays configured.
    """
    ensure_bridge()
    detach(box_name)
    namespace, veth = netns_name(box_name), host_veth(box_name)
    _ip("netns", "add", namespace)
    _ip("link", "add", "name", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
    _ip("link", "set", "dev", veth, "master", BRIDGE, "up")
    _ip("address", "add", f"{address}/{NETWORK.prefixlen}", "dev", "eth0", netns=namespace)
    _ip("link", "set", "dev", "eth0", "up", netns=namespace)
    _ip("link", "set", "dev", "lo", "up", netns=namespace)
    return netns_path(box_name)


def detach(box_name: str) -> None:
    """Removes the box's namespace and its veth pair, if there are any."""
    if netns_path(box_name).exists():
        _ip("netns", "delete", netns_name(box_name))
    veth = host_veth(box_name)
    # Deleting the namespace takes the pair down with it, but the kernel may not be done yet.
    if not _link_exists(veth):
        return
    if _ip("link", "delete", "dev", veth, check=False).returncode != 0 and _link_exists(veth):
        raise BoxError(f"cannot remove the link {veth} of the box {box_name}")
