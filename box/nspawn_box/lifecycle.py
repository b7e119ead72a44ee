"""What the box commands do: bring a box up, power it off, destroy it, log in, report its state."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import host_checks, machine, network, provisioning, rootfs_image
from .errors import BoxError
from .inventory import ssh_argv, write_inventory
from .settings import (
    BOX_USER,
    DEFAULT_SSH_PORT,
    PRIVATE_NETWORK_SSH_PORT,
    SHARED_NETWORK_SSH_HOST,
    Box,
    save_settings,
    state_dir,
    stored_settings,
)


def resolve_box(name: str, ssh_port: int | None = None, address: str | None = None) -> Box:
    """The box of that name, with what it was last brought up with unless told otherwise."""
    if not name.replace("-", "").isalnum() or name.startswith("-") or len(name) > 40:
        raise BoxError(f"box name {name!r} must be letters, digits and dashes (at most 40)")
    stored = stored_settings(name)
    address = address or stored.get("address")
    if address is not None:
        if ssh_port:
            raise BoxError("--ssh-port is for boxes on the host's network; a box with --address uses port 22")
        address = network.check_address(str(address))
        return Box(name=name, ssh_port=PRIVATE_NETWORK_SSH_PORT, address=address)
    port = ssh_port or int(stored.get("ssh_port") or DEFAULT_SSH_PORT)
    if not 1 <= port <= 65535:
        raise BoxError(f"--ssh-port {port} is not a TCP port")
    return Box(name=name, ssh_port=port)


def _ensure_address_unused(box: Box) -> None:
    """Two boxes with one address would both answer for it; refuse before booting the second."""
    if box.address is None or not state_dir().is_dir():
        return
    for other in state_dir().iterdir():
        if other.name != box.name and stored_settings(other.name).get("address") == box.address:
            raise BoxError(f"address {box.address} belongs to the box {other.name}; pick another")


@contextmanager
def _locked(box: Box) -> Iterator[None]:
    box.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(box.lock_file, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"box: waiting for another tfstack-box command on {box.name}", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _print_failed_units(leader: int) -> None:
    failed = machine.run_inside(leader, ["systemctl", "--failed", "--no-legend", "--plain"]).stdout.strip()
    print(f"box: degraded; failed units:\n{failed or '(none listed)'}", flush=True)


def _refresh_cas_inside(leader: int) -> None:
    result = machine.run_inside(leader, ["update-ca-certificates"], timeout=120)
    if result.returncode != 0:
        raise BoxError("update-ca-certificates failed inside the box", detail=result.stderr.strip())


def _wait_for_ssh(box: Box, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(ssh_argv(box, ["true"]), check=False, capture_output=True, text=True)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            target = f"{box.ssh_host}:{box.ssh_port}"
            raise BoxError(f"box {box.name} booted but ssh to {target} fails: {result.stderr.strip()}")
        time.sleep(0.3)


def _create(box: Box) -> None:
    tarball = rootfs_image.build_image()
    started = time.monotonic()
    box.home.mkdir(parents=True, exist_ok=True)
    partial = box.root.with_name("root.partial")
    if partial.exists():
        shutil.rmtree(partial)  # an earlier up died while unpacking
    rootfs_image.unpack_image(tarball, partial)
    provisioning.give_identity(box, partial)
    # Only a complete root gets the final name, so an interrupted up starts over next time.
    partial.rename(box.root)
    save_settings(box, rootfs_image.image_key())
    print(f"box: created {box.name} from {tarball.name} in {time.monotonic() - started:.1f} s", flush=True)


def up(box: Box, boot_timeout: float) -> None:
    host_checks.require_root("up")
    host_checks.ensure_host_tools()
    with _locked(box):
        running = machine.nspawn_pid(box)
        if running is not None:
            _already_up(box, running)
            return
        if box.address is None:
            host_checks.ensure_port_free(SHARED_NETWORK_SSH_HOST, box.ssh_port)
        _ensure_address_unused(box)
        # A box whose nspawn died hard may have left processes or cgroups; start clean.
        machine.kill_everything(box, None)
        machine.remove_cgroups(box)
        if not box.root.is_dir():
            _create(box)
        provisioning.configure_sshd(box)
        provisioning.install_login_key(box)
        provisioning.write_known_hosts(box)
        provisioning.sync_host_cas(box)
        created_from = str(stored_settings(box.name).get("image_key") or rootfs_image.image_key())
        save_settings(box, created_from)  # records a changed --ssh-port or --address
        if created_from != rootfs_image.image_key():
            print(f"box: {box.name} predates the current image; 'box destroy' then 'box up' to rebuild it")
        started = time.monotonic()
        nspawn = machine.start(box)
        try:
            state = machine.wait_until_booted(box, nspawn, boot_timeout)
            booted = time.monotonic() - started
            leader = machine.leader_pid(nspawn)
            if leader is None:
                raise BoxError(f"box {box.name} booted but its PID 1 vanished", detail=machine.log_tail(box))
            # At every boot, so CAs added to the host since the last one reach the box.
            _refresh_cas_inside(leader)
            _wait_for_ssh(box)
        except BaseException:
            # Leave no half-up box behind: the next `up` would take it for a running one.
            machine.stop(box, nspawn, timeout=10)
            machine.remove_cgroups(box)
            network.detach(box.name)
            raise
        write_inventory(box)
        if state == "degraded":
            _print_failed_units(leader)
        print(
            f"box: {box.name} is {state}: systemd up in {booted:.1f} s, ssh ready in "
            f"{time.monotonic() - started:.1f} s ({BOX_USER}@{box.ssh_host}:{box.ssh_port}); "
            f"inventory {box.inventory}",
            flush=True,
        )


def _already_up(box: Box, nspawn: int) -> None:
    stored = stored_settings(box.name)
    if stored and (stored.get("ssh_port"), stored.get("address")) != (box.ssh_port, box.address):
        raise BoxError(
            f"box {box.name} already runs with ssh port {stored.get('ssh_port')} and address "
            f"{stored.get('address') or 'shared'}; run 'box down' first to change them"
        )
    leader = machine.leader_pid(nspawn)
    state = machine.system_state(leader) if leader is not None else "unknown"
    # Cheap, and only touches the box when the host's CAs changed.
    if leader is not None and provisioning.sync_host_cas(box):
        _refresh_cas_inside(leader)
    write_inventory(box)
    print(f"box: {box.name} is already up ({state}); nothing to do", flush=True)
    if state == "degraded" and leader is not None:
        _print_failed_units(leader)


def down(box: Box, stop_timeout: float) -> None:
    host_checks.require_root("down")
    with _locked(box):
        nspawn = machine.nspawn_pid(box)
        if nspawn is None:
            machine.kill_everything(box, None)
            machine.remove_cgroups(box)
            network.detach(box.name)
            print(f"box: {box.name} is not running", flush=True)
            return
        started = time.monotonic()
        clean = machine.stop(box, nspawn, stop_timeout)
        machine.remove_cgroups(box)
        network.detach(box.name)
        took = time.monotonic() - started
        if clean:
            print(f"box: {box.name} powered off in {took:.1f} s; files kept in {box.home}", flush=True)
        else:
            print(f"box: {box.name} did not power off within {stop_timeout:.0f} s; killed it", flush=True)


def destroy(box: Box, stop_timeout: float) -> None:
    host_checks.require_root("destroy")
    with _locked(box):
        nspawn = machine.nspawn_pid(box)
        box_pids = machine.processes_in_cgroups(box) | ({nspawn} if nspawn else set())
        if nspawn is not None:
            machine.stop(box, nspawn, stop_timeout)
        machine.kill_everything(box, None)
        machine.wait_until_reaped(box_pids)
        left = machine.remove_cgroups(box)
        network.detach(box.name)
        if left:
            raise BoxError(f"cannot remove the box's cgroups (processes left?): {', '.join(map(str, left))}")
        if machine.mounts_under(box.home):
            # nspawn mounts only inside its own namespace, so this is a leftover of something else.
            subprocess.run(["umount", "--recursive", "--lazy", str(box.home)], check=False)
        mounts = machine.mounts_under(box.home)
        if mounts:
            raise BoxError(f"mounts remain under {box.home}: {', '.join(mounts)}")
        removed = [path for path in (box.home, box.repo_dir) if path.exists()]
        for path in removed:
            shutil.rmtree(path)
        for path in (box.inventory, Path("/run/systemd/nspawn/propagate") / box.name):
            if path.is_file():
                path.unlink()
                removed.append(path)
            elif path.is_dir():
                shutil.rmtree(path)
        box.lock_file.unlink(missing_ok=True)
        if removed:
            print(f"box: destroyed {box.name} (removed {', '.join(map(str, removed))})", flush=True)
        else:
            print(f"box: {box.name} does not exist; nothing to destroy", flush=True)


def ssh(box: Box, remote_command: list[str]) -> None:
    if remote_command[:1] == ["--"]:
        remote_command = remote_command[1:]
    if machine.nspawn_pid(box) is None:
        raise BoxError(f"box {box.name} is not running; run 'tfstack-box up --name {box.name}' first")
    argv = ssh_argv(box, remote_command, batch=not sys.stdin.isatty())
    os.execvp(argv[0], argv)


def status(box: Box) -> int:
    nspawn = machine.nspawn_pid(box)
    if nspawn is None:
        exists = "stopped" if box.root.is_dir() else "absent"
        print(f"box {box.name}: {exists}")
        return 3
    leader = machine.leader_pid(nspawn)
    state = machine.system_state(leader) if leader is not None and os.geteuid() == 0 else "unknown"
    print(f"box {box.name}: running (nspawn pid {nspawn}, system state {state})")
    print(f"  ssh:       tfstack-box ssh --name {box.name}   ({BOX_USER}@{box.ssh_host}:{box.ssh_port})")
    print(f"  inventory: {box.inventory}")
    print(f"  root:      {box.root}")
    print(f"  log:       {box.log_file}")
    return 0
