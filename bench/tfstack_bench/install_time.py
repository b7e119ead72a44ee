"""Install time of a fresh host from the package mirror against from upstream and PyPI, in one run.

    flock /tmp/tfstack-box.lock .venv/bin/python -m tfstack_bench.install_time   # as root, repo root

1. The stand-in's apt repository is built and served: "upstream" here (TF Serving's own repository is
   unreachable from this machine, so the mirror follows the stand-in's, as in `make up`).
2. `make up`'s mirror box (tfstack-mirror, `tfstack-fleet mirror`) is made from nothing and converged
   with playbooks/mirror.yml (aptly mirror and signed snapshot, nginx, apt-cacher-ng, the wheelhouse,
   which is built on this machine and kept in its cache): the mirror's build time, then a rerun's.
3. A fresh box converges site.yml from upstream: the stand-in's repository, PyPI, Debian's archive.
4. Fresh boxes converge site.yml from the mirror: its signed repository, its wheelhouse, Debian
   packages through its apt-cacher-ng (cold for the first host, warm for the next).
Each box is a new Debian 12 root from the cached image, on this machine's network, recorded like
`make up`'s box (group vars beside its inventory) and destroyed after its run. It uses the ports of the
stack (8500, 8501, 8080), so `make up`'s box is powered off first (its files kept).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
BOX = "tfstack-bench-host"
BOX_SSH_PORT = 2226
DEV_BOX = "tfstack"
MIRROR_BOX = "tfstack-mirror"
BOX_DIR = Path(".box")


class BenchError(Exception):
    """A step failed: one line, exit 1."""


@dataclass(frozen=True)
class Timing:
    what: str
    seconds: float
    recap: str = ""


def run(command: str, *args: str, log: Path | None = None) -> str:
    """One of the project's commands from this environment; its output, or a BenchError."""
    completed = subprocess.run(
        [str(VENV_BIN / command), *args], capture_output=True, text=True, check=False, timeout=3600
    )
    output = completed.stdout + completed.stderr
    if log:
        log.write_text(output)
    if completed.returncode != 0:
        where = f"; whole output in {log}" if log else ""
        tail = " | ".join(output.strip().splitlines()[-3:])
        raise BenchError(f"{command} {' '.join(args)} failed ({tail}){where}")
    return output


def playbook(inventory: Path, name: str, log: Path) -> Timing:
    started = time.monotonic()
    output = run("ansible-playbook", "-i", str(inventory), name, log=log)
    recap = [line.split(":", 1)[1].split() for line in output.splitlines() if " changed=" in line]
    summary = " ".join(recap[-1][:2]) if recap else ""
    return Timing(name, time.monotonic() - started, summary)


def fresh_host(source: str, log_dir: Path, upstream: Path) -> Timing:
    """A new box, its packages' source recorded beside its inventory, converged by site.yml."""
    run("tfstack-box", "destroy", "--name", BOX)
    run("tfstack-box", "up", "--name", BOX, "--ssh-port", str(BOX_SSH_PORT))
    inventory_dir = BOX_DIR / BOX
    if source == "upstream":
        run("tfstack-standin-repo", "record", str(inventory_dir))
    else:
        run("tfstack-fleet", "mirror", "--upstream", str(upstream), "--record", str(inventory_dir))
    try:
        timing = playbook(inventory_dir / "inventory.ini", "site.yml", log_dir / f"host-{source}.log")
    finally:
        run("tfstack-box", "destroy", "--name", BOX)
    return Timing(f"fresh host from {source}", timing.seconds, timing.recap)


def build_mirror(log_dir: Path, upstream: Path) -> list[Timing]:
    """The mirror box from nothing, then a rerun of its playbook."""
    run("tfstack-box", "destroy", "--name", MIRROR_BOX)
    started = time.monotonic()
    run("tfstack-fleet", "mirror", "--upstream", str(upstream))
    booted = time.monotonic() - started
    inventory = BOX_DIR / "mirror" / "inventory.ini"
    first = playbook(inventory, "playbooks/mirror.yml", log_dir / "mirror-first.log")
    again = playbook(inventory, "playbooks/mirror.yml", log_dir / "mirror-rerun.log")
    return [
        Timing("mirror box boot", booted),
        Timing("mirror build (playbooks/mirror.yml, first run)", first.seconds, first.recap),
        Timing("mirror rerun", again.seconds, again.recap),
    ]


def measure(log_dir: Path, mirror_hosts: int) -> list[Timing]:
    log_dir.mkdir(parents=True, exist_ok=True)
    if subprocess.run([str(VENV_BIN / "tfstack-box"), "status", "--name", DEV_BOX],
                      capture_output=True, check=False).returncode == 0:  # fmt: skip
        print(f"powering off the box {DEV_BOX} (files kept): the test hosts need its ports", flush=True)
        run("tfstack-box", "down", "--name", DEV_BOX)
    run("tfstack-standin-repo", "build")
    run("tfstack-standin-repo", "serve")
    upstream = log_dir / "upstream.json"
    upstream.write_text(run("tfstack-standin-repo", "ansible-vars"))
    timings = build_mirror(log_dir, upstream)
    for timing in timings:
        show(timing)
    steps = [("upstream", 1), ("mirror", mirror_hosts)]
    for source, count in steps:
        for _ in range(count):
            timings.append(fresh_host(source, log_dir, upstream))
            show(timings[-1])
    return timings


def show(timing: Timing) -> None:
    print(f"{timing.what:<50} {timing.seconds:7.1f} s  {timing.recap}", flush=True)


def report(timings: list[Timing]) -> None:
    upstream = next(t.seconds for t in timings if t.what == "fresh host from upstream")
    mirror = [t.seconds for t in timings if t.what == "fresh host from mirror"]
    print("\nfresh host, site.yml from nothing (ratio to upstream):")
    print(f"  {'upstream (stand-in repository, PyPI, Debian)':<46} {upstream:7.1f} s  1.00")
    for number, seconds in enumerate(mirror, start=1):
        what = f"mirror, host {number} ({'cold' if number == 1 else 'warm'} apt proxy)"
        print(f"  {what:<46} {seconds:7.1f} s  {seconds / upstream:.2f}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfstack_bench.install_time",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--mirror-hosts", type=int, default=2, help="fresh hosts installed from the mirror (default: 2)"
    )
    parser.add_argument(
        "--logs", type=Path, default=Path("test-output") / "install-time", metavar="DIR",
        help="where each playbook's output goes (default: test-output/install-time)",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not Path("site.yml").is_file():
        print("install_time: run it from the repository root (no site.yml here)", file=sys.stderr)
        return 2
    try:
        report(measure(args.logs, max(args.mirror_hosts, 1)))
    except BenchError as error:
        print(f"install_time: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
