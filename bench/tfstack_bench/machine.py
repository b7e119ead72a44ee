"""What the benchmark ran on, for the report: processor, cores, memory, system, load, versions, and
the CPU time the hypervisor gave to other guests while it ran (steal), the context switches of every
core, and how idle cores wait."""

from __future__ import annotations

import os
import platform
import struct
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "tfserving-web",
    "tfserving-standin",
    "tensorflow",
    "grpcio",
    "protobuf",
    "Flask",
    "gunicorn",
    "requests",
    "waitress",
)


def _read(path: Path) -> str:
    """A /proc, /sys or /etc file's text; empty where the machine does not have it."""
    try:
        return path.read_text()
    except OSError:
        return ""


def _line_starting(path: Path, prefix: str) -> str | None:
    return next((line for line in _read(path).splitlines() if line.startswith(prefix)), None)


def _cpu_model() -> str:
    line = _line_starting(Path("/proc/cpuinfo"), "model name")
    return line.split(":", 1)[1].strip() if line else (platform.processor() or "unknown")


def _memory_gib() -> float | None:
    line = _line_starting(Path("/proc/meminfo"), "MemTotal:")
    return round(int(line.split()[1]) / 1024 / 1024, 1) if line else None


def _os_name() -> str:
    line = _line_starting(Path("/etc/os-release"), "PRETTY_NAME=")
    return line.split("=", 1)[1].strip('"') if line else platform.system()


def _virtualization() -> str:
    try:
        result = subprocess.run(
            ["systemd-detect-virt"], capture_output=True, text=True, timeout=5, check=False
        )
        return result.stdout.strip() or "none"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git_commit(repository: Path) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(repository), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


# The kernel's "no limit" for the CPU latency request (PM_QOS_CPU_LATENCY_DEFAULT_VALUE, 2000 s in µs).
NO_LATENCY_LIMIT_US = 2_000_000_000


def _sysfs_value(path: Path) -> str | None:
    return _read(path).strip() or None


def _latency_limit_us(request: Path) -> int | None:
    """The CPU wake-up latency limit in force, the lowest that any process holds: at 0 idle cores
    poll and never halt, which changes how long a sleeping server takes to answer on a virtual machine.
    Reading it needs root (opening it adds a request of no limit until closed); None where it cannot."""
    try:
        with request.open("rb") as limit:
            return struct.unpack("i", limit.read(4))[0]
    except (OSError, struct.error):
        return None


def cpu_idle(
    sysfs: Path = Path("/sys/devices/system/cpu/cpuidle"),
    request: Path = Path("/dev/cpu_dma_latency"),
) -> dict:
    """How the machine's idle cores wait: the cpuidle driver and governor, and the latency limit."""
    return {
        "driver": _sysfs_value(sysfs / "current_driver"),
        "governor": _sysfs_value(sysfs / "current_governor_ro") or _sysfs_value(sysfs / "current_governor"),
        "latency_limit_us": _latency_limit_us(request),
    }


def load_average() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


@dataclass(frozen=True)
class CpuTimes:
    """The machine's CPU time so far, all cores together, in clock ticks (/proc/stat's first line),
    and its context switches so far, every process and core (the ctxt line; None where it is missing)."""

    total: int
    steal: int
    context_switches: int | None = None


def cpu_times(stat: Path = Path("/proc/stat")) -> CpuTimes | None:
    """None where there is no /proc/stat or its cpu line has no steal column."""
    lines = _read(stat).splitlines()
    fields = lines[0].split() if lines else []
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal; guest time is counted in user already.
    ticks = [int(value) for value in fields[1:9]]
    switches = next((int(line.split()[1]) for line in lines if line.startswith("ctxt ")), None)
    return CpuTimes(total=sum(ticks), steal=ticks[7], context_switches=switches)


def context_switches(before: CpuTimes | None, after: CpuTimes | None) -> int | None:
    """How many times the machine's cores switched from one thread to another between two readings.
    On a virtual machine every wake-up of a thread that slept may cost an exit to the hypervisor:
    the count shows how many hand-offs a path makes, which its latency alone does not."""
    if before is None or after is None or before.context_switches is None or after.context_switches is None:
        return None
    return after.context_switches - before.context_switches


def stolen_percent(before: CpuTimes | None, after: CpuTimes | None) -> float | None:
    """The share of the machine's CPU time between two readings that the hypervisor ran other guests
    on instead (steal): a virtual machine on a busy host loses it to them, whatever it runs itself,
    which is why the bench compares paths within one run."""
    if before is None or after is None or after.total <= before.total:
        return None
    return round(100 * (after.steal - before.steal) / (after.total - before.total), 1)


def describe(repository: Path) -> dict:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": _memory_gib(),
        "os": _os_name(),
        "kernel": platform.release(),
        "virtualization": _virtualization(),
        "cpu_idle": cpu_idle(),
        "python": platform.python_version(),
        "packages": _versions(),
        "commit": _git_commit(repository),
        "load_average_at_start": load_average(),
    }
