"""Boots, inspects and stops the box's systemd-nspawn process."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from . import network
from .errors import BoxError
from .settings import Box

CGROUP_ROOT = Path("/sys/fs/cgroup")
INSIDE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def host_runs_systemd() -> bool:
    return Path("/run/systemd/system").is_dir()


def nspawn_argv(box: Box) -> list[str]:
    """The systemd-nspawn command line; each flag says why it is there."""
    argv = [
        "systemd-nspawn",
        "--quiet",
        "--boot",  # systemd as PID 1, like a real machine
        f"--directory={box.root}",
        f"--machine={box.name}",  # hostname, and how `box` recognises its own process
        # Same uids as the host: root-owned files stay root-owned, the host can read the box's files,
        # and the units' hardening runs with real capabilities rather than a user namespace's.
        "--private-users=no",
        "--resolv-conf=copy-host",
        # The journal stays inside the box (auto would bind-mount the host's /var/log/journal/<id>).
        "--link-journal=no",
        # Boot messages go to our log file; input is never read (the box is detached).
        "--console=read-only",
        "--setenv=SYSTEMD_COLORS=0",
        # The box's systemd enforces IPAddressAllow=/IPAddressDeny= and DeviceAllow= with cgroup BPF
        # programs. nspawn's default seccomp filter and capability set forbid loading them, and
        # systemd then ignores those settings with only a log line; these two let them take effect.
        "--capability=CAP_BPF",
        "--system-call-filter=bpf",
    ]
    if box.address is not None:
        # Its own namespace on the private network (start() makes it). Without one, ports the box
        # opens appear on the host, as Vagrant's forwarded ports do.
        argv.append(f"--network-namespace-path={network.netns_path(box.name)}")
    if host_runs_systemd():
        # A proper host: nspawn registers with machined and gets a scope of its own.
        argv.append("--register=yes")
    else:
        # No systemd on the host: nothing to register with, and no scope to create; the cgroup
        # made in _enter_own_cgroup stands in for one.
        argv += ["--register=no", "--keep-unit"]
    return argv


# --- cgroups ---------------------------------------------------------------------------------
# Without systemd on the host, nspawn --keep-unit nests the box's cgroups (payload/, supervisor/)
# under the cgroup it was started in. Left in the root cgroup, two boxes would share one tree, so
# each box gets a cgroup of its own in the hierarchies systemd manages (the named systemd one and
# the unified one), the way a scope would.


def _cgroup_hierarchies() -> list[Path]:
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]  # pure cgroup v2
    return [
        path
        for path in (CGROUP_ROOT / "systemd", CGROUP_ROOT / "unified")
        if (path / "cgroup.procs").exists()
    ]


def box_cgroups(box: Box) -> list[Path]:
    return [hierarchy / f"tfstack-box-{box.name}" for hierarchy in _cgroup_hierarchies()]


def _enter_own_cgroup(cgroups: list[Path]) -> None:
    """Runs in the child between fork and exec: moves it (and so nspawn) into the box's cgroups."""
    for cgroup in cgroups:
        (cgroup / "cgroup.procs").write_text("0")


def processes_in_cgroups(box: Box) -> set[int]:
    pids: set[int] = set()
    for cgroup in box_cgroups(box):
        if not cgroup.is_dir():
            continue
        for directory, _subdirs, _files in os.walk(cgroup):
            try:
                pids.update(int(pid) for pid in Path(directory, "cgroup.procs").read_text().split())
            except OSError:
                continue
    return pids


def remove_cgroups(box: Box) -> list[Path]:
    """Removes the box's cgroup trees; returns the ones that could not be removed."""
    left: list[Path] = []
    for cgroup in box_cgroups(box):
        if not cgroup.is_dir():
            continue
        for directory, _subdirs, _files in os.walk(cgroup, topdown=False):
            try:
                os.rmdir(directory)
            except OSError:
                left.append(Path(directory))
    return left


# --- process state ---------------------------------------------------------------------------


def _is_live_nspawn_of(pid: int, box: Box) -> bool:
    """True when pid is a running (not zombie) systemd-nspawn started for this box."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return (
        state not in ("Z", "X")
        and bool(cmdline)
        and cmdline[0].endswith(b"systemd-nspawn")
        and f"--machine={box.name}".encode() in cmdline
        and f"--directory={box.root}".encode() in cmdline
    )


def nspawn_pid(box: Box) -> int | None:
    """The pid of the box's nspawn process if it runs, else None (a stale pid file is ignored)."""
    try:
        pid = int(box.pid_file.read_text())
    except (OSError, ValueError):
        return None
    return pid if _is_live_nspawn_of(pid, box) else None


def leader_pid(nspawn: int) -> int | None:
    """The box's PID 1 as the host sees it: the child of nspawn that is pid 1 in its namespace."""
    try:
        children = Path(f"/proc/{nspawn}/task/{nspawn}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                return int(child)
    return None


def run_inside(leader: int, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs a command in the box's namespaces as root (no SSH needed, works while it boots)."""
    return subprocess.run(
        [
            "nsenter",
            f"--target={leader}",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--root",
            "--wd",
            *argv,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": INSIDE_PATH, "LANG": "C.UTF-8"},
    )


def log_tail(box: Box, lines: int = 25) -> str:
    try:
        text = box.log_file.read_text(errors="replace")
    except OSError:
        return "(no log)"
    text_lines = [line for line in ANSI_ESCAPE.sub("", text).splitlines() if line.strip()]
    return "\n".join(text_lines[-lines:])


# --- boot and stop ---------------------------------------------------------------------------


def nspawn_environment() -> dict[str, str]:
    # Boot the box with the unified cgroup hierarchy even on a hybrid host (this one's PID 1
    # mounts cgroup v1 controllers): cgroup BPF, hence IPAddressDeny=, needs it, and Ubuntu 22.04+
    # (the bundle's target) runs unified too. The v1 controllers are read-only inside either way.
    return {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}


def start(box: Box) -> int:
    """Starts nspawn detached (own session, output to the log file) and returns its pid."""
    if box.log_file.exists():
        box.log_file.replace(box.log_file.with_suffix(".log.previous"))
    if box.address is not None:
        network.attach(box.name, box.address)
    cgroups: list[Path] = []
    if not host_runs_systemd():
        cgroups = box_cgroups(box)
        for cgroup in cgroups:
            cgroup.mkdir(exist_ok=True)
    with open(box.log_file, "w") as log:
        process = subprocess.Popen(
            nspawn_argv(box),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the shell (and `box up`) that started it
            preexec_fn=(lambda: _enter_own_cgroup(cgroups)) if cgroups else None,
            close_fds=True,
            env=nspawn_environment(),
        )
    box.pid_file.write_text(f"{process.pid}\n")
    return process.pid


def system_state(leader: int) -> str:
    try:
        result = run_inside(leader, ["systemctl", "is-system-running"], timeout=15)
    except subprocess.TimeoutExpired:
        return "unknown"
    return result.stdout.strip() or "unknown"


def wait_until_booted(box: Box, nspawn: int, timeout: float) -> str:
    """Waits for `systemctl is-system-running` to settle; returns running or degraded."""
    deadline = time.monotonic() + timeout
    state = "not started"
    while time.monotonic() < deadline:
        if not _is_live_nspawn_of(nspawn, box):
            raise BoxError(
                f"box {box.name} failed to boot: systemd-nspawn exited; last lines of {box.log_file}:",
                detail=log_tail(box),
            )
        leader = leader_pid(nspawn)
        if leader is not None:
            state = system_state(leader)
            if state in ("running", "degraded"):
                return state
            if state in ("maintenance", "stopping"):
                break
        time.sleep(0.2)
    raise BoxError(
        f"box {box.name} did not finish booting (system state: {state}); last lines of {box.log_file}:",
        detail=log_tail(box),
    )


def stop(box: Box, nspawn: int, timeout: float) -> bool:
    """Clean poweroff; after timeout, SIGKILL. Returns True when the clean shutdown made it in time."""
    # For --boot, nspawn turns SIGTERM into SIGRTMIN+3 for the box's systemd: an orderly halt, after
    # which nspawn exits.
    with contextlib.suppress(ProcessLookupError):  # it may have exited on its own meanwhile
        os.kill(nspawn, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_live_nspawn_of(nspawn, box):
            return True
        time.sleep(0.1)
    kill_everything(box, nspawn)
    return False


def kill_everything(box: Box, nspawn: int | None) -> None:
    """SIGKILL nspawn and anything left in the box's cgroups (the box's PID 1 dies with nspawn)."""
    pids = processes_in_cgroups(box)
    if nspawn is not None:
        pids.add(nspawn)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = {pid for pid in pids if Path(f"/proc/{pid}").exists() and _state_of(pid) not in ("Z", "X")}
        if not alive:
            return
        time.sleep(0.1)


def wait_until_reaped(pids: set[int], timeout: float = 5) -> None:
    """Killed processes stay zombies until the host's PID 1 reaps them; give it a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.1)


def _state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path in the host's mount namespace (there should be none)."""
    found: list[str] = []
    prefix = str(path).rstrip("/")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point == prefix or mount_point.startswith(prefix + "/"):
            found.append(mount_point)
    return found
