"""The box's whole life, in order: up from nothing, use it, up again, down/up, a failed boot, destroy.

One box for the module (booting is the slow part); the tests run in file order and each builds on
the one before, as a person would use the box. It is destroyed at the end whatever happens.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import testinfra

from tests.box.box_support import TEST_BOX_NAME, TEST_SSH_PORT, box_ssh, needs_root_and_nspawn, run_box
from tests.support.paths import REPO_ROOT, VENV_BIN

pytestmark = [pytest.mark.box, pytest.mark.slow, needs_root_and_nspawn]

STATE_DIR = Path("/var/lib/tfserving-stack/boxes") / TEST_BOX_NAME
REPO_BOX_DIR = REPO_ROOT / ".box" / TEST_BOX_NAME
INVENTORY = REPO_BOX_DIR / "inventory.ini"
MARKER = "/home/vagrant/kept-across-down-up"


@pytest.fixture(scope="module", autouse=True)
def fresh_box():
    run_box("destroy")  # "up from nothing": no box of this name (the cached image may exist)
    yield
    run_box("destroy")


def _nspawn_pid() -> int:
    status = run_box("status")
    assert status.returncode == 0, status.stdout
    return int(re.search(r"nspawn pid (\d+)", status.stdout).group(1))


def _box_processes() -> list[int]:
    """Host pids of every process started for the box (nspawn and all inside it)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cgroups = (proc / "cgroup").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"tfstack-box-{TEST_BOX_NAME}/" in cgroups or f"--machine={TEST_BOX_NAME}".encode() in cmdline:
            pids.append(int(proc.name))
    return pids


def _describe(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return f"{state} {cmdline}"
    except OSError:
        return "gone"


def test_up_from_nothing_boots_systemd() -> None:
    started = time.monotonic()
    result = run_box("up", "--ssh-port", str(TEST_SSH_PORT))
    print(f"up from nothing (cached image may exist): {time.monotonic() - started:.1f} s wall")
    assert result.returncode == 0, result.stderr
    assert f"{TEST_BOX_NAME} is running" in result.stdout


def test_ssh_logs_in_as_vagrant() -> None:
    result = box_ssh("id -un")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "vagrant"


def test_sudo_needs_no_password() -> None:
    assert box_ssh("sudo -n true").returncode == 0


def test_systemd_is_pid_1_and_running() -> None:
    result = box_ssh("ps -o comm= -p 1; systemctl is-system-running")
    assert result.stdout.split() == ["systemd", "running"], result.stdout


def test_only_sshd_on_loopback_listens_on_the_host() -> None:
    # The box shares the host's network: a stray daemon inside would take a host port.
    listeners = subprocess.run(["ss", "-Hltnup"], capture_output=True, text=True, check=True).stdout
    box_pids = {str(pid) for pid in _box_processes()}
    box_listeners = {
        line.split()[4] for line in listeners.splitlines() if set(re.findall(r"pid=(\d+)", line)) & box_pids
    }
    assert box_listeners == {f"127.0.0.1:{TEST_SSH_PORT}"}


def test_box_trusts_the_hosts_ca_certificates() -> None:
    host_cas = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    bundle = box_ssh("cat /etc/ssl/certs/ca-certificates.crt").stdout
    for host_ca in host_cas:
        body = "".join(line for line in host_ca.read_text().splitlines() if not line.startswith("-----"))
        assert body in bundle.replace("\n", ""), f"{host_ca.name} missing from the box's CA bundle"


def test_unit_hardening_is_enforced_inside() -> None:
    # What the TF Serving unit relies on: a read-only /usr, a syscall filter and an IP allow list.
    result = box_ssh(
        "sudo systemd-run --quiet --wait --pipe --collect -p ProtectSystem=strict -p PrivateDevices=yes"
        " -p SystemCallFilter=@system-service -p IPAddressDeny=any"
        " sh -c 'touch /usr/x 2>/dev/null && echo usr-writable;"
        " test -e /dev/net/tun && echo devices-visible;"
        f' timeout 1 bash -c "echo > /dev/tcp/127.0.0.1/{TEST_SSH_PORT}" 2>/dev/null && echo ip-allowed;'
        " echo done'"
    )
    assert result.stdout.split() == ["done"], result.stdout + result.stderr


def test_apt_installs_a_package() -> None:
    result = box_ssh(
        "sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tree"
        " >/dev/null && tree --version"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tree v")


def test_second_up_is_a_no_op() -> None:
    before = _nspawn_pid()
    result = run_box("up")
    assert result.returncode == 0
    assert "already up (running); nothing to do" in result.stdout
    assert _nspawn_pid() == before


def _ansible(*args: str) -> subprocess.CompletedProcess[str]:
    """An ad-hoc ansible command through the box's inventory, from the repository root."""
    argv = [str(VENV_BIN / "ansible"), "-i", str(INVENTORY), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO_ROOT)


def test_ansible_pings_through_the_inventory() -> None:
    result = _ansible("all", "-m", "ansible.builtin.setup", "-a", "filter=ansible_service_mgr")
    assert result.returncode == 0, result.stdout + result.stderr
    # Matches the default and the yaml stdout callbacks alike (ansible.cfg may pick either).
    assert re.search(r'ansible_service_mgr"?: "?systemd', result.stdout), result.stdout
    ping = _ansible("tfserving:webapp", "-m", "ansible.builtin.ping")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert re.search(r'ping"?: "?pong', ping.stdout), ping.stdout


def test_testinfra_reads_the_box(monkeypatch: pytest.MonkeyPatch) -> None:
    # testinfra's ansible backend runs ansible-inventory from PATH.
    monkeypatch.setenv("PATH", f"{VENV_BIN}:{os.environ['PATH']}")
    host = testinfra.get_host(f"ansible://{TEST_BOX_NAME}?ansible_inventory={INVENTORY}")
    assert host.file("/etc/os-release").contains("bookworm")
    assert host.user("vagrant").exists
    assert host.service("ssh").is_running
    assert host.socket(f"tcp://127.0.0.1:{TEST_SSH_PORT}").is_listening
    assert host.check_output("whoami") == "root"  # become from the inventory


def test_down_then_up_keeps_files_and_reports_boot_time() -> None:
    assert box_ssh(f"echo kept > {MARKER}").returncode == 0
    down = run_box("down")
    assert down.returncode == 0
    assert "powered off" in down.stdout
    assert run_box("status").returncode == 3
    started = time.monotonic()
    up = run_box("up")
    took = time.monotonic() - started
    assert up.returncode == 0, up.stderr
    print(f"\nboot of a cached, stopped box until ssh works: {took:.1f} s wall (target < 15 s)")
    assert box_ssh(f"cat {MARKER}").stdout.strip() == "kept"


def test_boot_timeout_leaves_the_box_stopped() -> None:
    assert run_box("down").returncode == 0
    result = run_box("up", "--boot-timeout", "0.01")
    assert result.returncode == 1
    assert f"box {TEST_BOX_NAME} did not finish booting" in result.stderr
    assert run_box("status").returncode == 3  # not a half-up box that the next up would skip


def test_box_that_fails_to_boot_shows_its_log() -> None:
    assert run_box("down").returncode == 0
    # No init to execute: nspawn gives up at once and says why in the log.
    for init in ("usr/lib/systemd/systemd", "sbin/init"):
        (STATE_DIR / "root" / init).unlink()
    result = run_box("up", "--boot-timeout", "30")
    assert result.returncode == 1
    first, *tail = result.stderr.strip().splitlines()
    assert first.startswith(f"box: box {TEST_BOX_NAME} failed to boot")
    assert str(STATE_DIR / "box.log") in first
    assert tail, "the log tail is missing"
    assert "Traceback" not in result.stderr


def test_destroy_leaves_no_process_mount_or_file() -> None:
    result = run_box("destroy")
    assert result.returncode == 0
    # A zombie (state Z) has exited and holds nothing; collecting it is the host PID 1's job, which
    # on a host without systemd (CI here) may take longer than destroy waits. Any live process fails.
    left = {pid: _describe(pid) for pid in _box_processes()}
    assert {pid: what for pid, what in left.items() if not what.startswith("Z ")} == {}
    assert str(STATE_DIR) not in Path("/proc/self/mountinfo").read_text()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/tfstack-box-{TEST_BOX_NAME}"))
    assert not STATE_DIR.exists()
    assert not REPO_BOX_DIR.exists()
    assert not Path(f"/run/lock/tfstack-box-{TEST_BOX_NAME}.lock").exists()
    assert run_box("status").stdout.strip() == f"box {TEST_BOX_NAME}: absent"
