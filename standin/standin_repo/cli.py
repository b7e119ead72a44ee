#!/usr/bin/env python3
"""Build, sign and serve the local apt repository of the TF Serving stand-in.

TF Serving's own apt repository cannot be reached from the machines this project is tested on, so
`make up` and the deployment tests install the stand-in (a test double, see standin/) from this
repository instead, through the same path the real package takes: a deb822 source, a signing key
checked by apt (no trusted=yes), `apt-get install tensorflow-model-server`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STANDIN_DIR = REPO_ROOT / "standin"
DEBIAN_DIR = STANDIN_DIR / "debian"
REQUIREMENTS = [REPO_ROOT / "requirements" / "standin.txt", REPO_ROOT / "requirements" / "constraints.txt"]

PACKAGES = ("tensorflow-model-server", "tensorflow-model-server-universal")
SUITE = "stable"
ARCH = "amd64"
# Upstream-looking version with a suffix that says what this is; the build time makes every rebuild
# a newer version, so `apt-get upgrade` on a box picks up a changed stand-in.
UPSTREAM_VERSION = "2.21.0"
KEY_NAME = "tensorflow-serving.release.pub.gpg"
FINGERPRINT_NAME = "tensorflow-serving.release.fingerprint"
KEY_UID = "tfserving-stack stand-in repository (TEST ONLY) <standin@localhost>"
DEFAULT_PORT = 8099
LIB_DIR = "usr/lib/tensorflow-model-server-standin"


class RepoError(Exception):
    """An expected failure: printed as one line, exit 1."""


def work_dir() -> Path:
    return Path(os.environ.get("TFSTACK_CACHE_DIR") or "/var/cache/tfserving-stack") / "standin-repo"


def run(*argv: str | Path, env: dict[str, str] | None = None, stdout=None) -> str:
    completed = subprocess.run(
        [str(arg) for arg in argv], env=env, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RepoError(f"{Path(str(argv[0])).name} failed: {completed.stderr.strip().splitlines()[-1:]}")
    return completed.stdout or ""


def source_digest() -> str:
    """What the packages are built from; an unchanged digest means an unchanged repository."""
    digest = hashlib.sha256(UPSTREAM_VERSION.encode())
    files = sorted(p for p in STANDIN_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in [*files, *REQUIREMENTS]:
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def gpg_env(home: Path) -> dict[str, str]:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return {**os.environ, "GNUPGHOME": str(home)}


def ensure_signing_key(home: Path) -> str:
    """The throw-away key, made on the spot the first time and kept so the boxes' keyrings stay valid."""
    env = gpg_env(home)
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"], env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    fingerprints = [line.split(":")[9] for line in listing.stdout.splitlines() if line.startswith("fpr:")]
    if fingerprints:
        return fingerprints[0]
    print("standin-repo: making a throw-away signing key")
    run("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", KEY_UID,
        "ed25519", "sign", "2y", env=env)  # fmt: skip
    return ensure_signing_key(home)


def build_package(package: str, version: str, staging: Path, out_dir: Path) -> Path:
    other = next(name for name in PACKAGES if name != package)
    root = staging / package
    lib = root / LIB_DIR
    shutil.copytree(STANDIN_DIR / "tfserving_standin", lib / "tfserving_standin",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    (lib / "requirements").mkdir(parents=True)
    for requirement in REQUIREMENTS:
        shutil.copy(requirement, lib / "requirements" / requirement.name)
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy(DEBIAN_DIR / "tensorflow_model_server", root / "usr/bin/tensorflow_model_server")
    control_dir = root / "DEBIAN"
    control_dir.mkdir()
    size_kib = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 1024 + 1
    control = (DEBIAN_DIR / "control.in").read_text()
    fields = {"@PACKAGE@": package, "@OTHER@": other, "@VERSION@": version, "@SIZE@": str(size_kib)}
    for key, value in fields.items():
        control = control.replace(key, value)
    (control_dir / "control").write_text(control)
    for script in ("postinst", "prerm", "postrm"):
        shutil.copy(DEBIAN_DIR / script, control_dir / script)
        (control_dir / script).chmod(0o755)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    target = out_dir / f"{package}_{version}_{ARCH}.deb"
    run("dpkg-deb", "--root-owner-group", "-Zxz", "--build", root, target)
    return target


def build(args: argparse.Namespace) -> None:
    base = work_dir()
    repo = base / "repo"
    digest = source_digest()
    stamp = base / "source.sha256"
    if (repo / "dists" / SUITE / "InRelease").is_file() and stamp.is_file() and stamp.read_text() == digest:
        print(f"standin-repo: {repo} is up to date")
        return
    for tool in ("dpkg-deb", "apt-ftparchive", "gpg"):
        if shutil.which(tool) is None:
            raise RepoError(f"{tool} is missing; run scripts/install-host-packages")
    started = time.monotonic()
    fingerprint = ensure_signing_key(base / "gnupg")
    version = f"{UPSTREAM_VERSION}+standin{int(time.time())}"
    fresh = base / "repo.new"
    shutil.rmtree(fresh, ignore_errors=True)
    with tempfile.TemporaryDirectory() as staging:
        for package in PACKAGES:
            # Official layout: one component per build of the server.
            pool = fresh / "pool" / package
            pool.mkdir(parents=True)
            build_package(package, version, Path(staging), pool)
            index_dir = fresh / "dists" / SUITE / package / f"binary-{ARCH}"
            index_dir.mkdir(parents=True)
            # Run from the repository root so the Filename: fields are relative to it.
            packages_text = subprocess.run(["apt-ftparchive", "packages", f"pool/{package}"], cwd=fresh,
                                           capture_output=True, text=True, check=True).stdout
            (index_dir / "Packages").write_text(packages_text)
            run("gzip", "-9kn", index_dir / "Packages")
    release = subprocess.run(
        ["apt-ftparchive",
         "-o", f"APT::FTPArchive::Release::Suite={SUITE}",
         "-o", f"APT::FTPArchive::Release::Codename={SUITE}",
         "-o", f"APT::FTPArchive::Release::Components={' '.join(PACKAGES)}",
         "-o", f"APT::FTPArchive::Release::Architectures={ARCH}",
         "-o", "APT::FTPArchive::Release::Label=tfserving-stack stand-in (TEST ONLY)",
         "release", f"dists/{SUITE}"],
        cwd=fresh, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    release_path = fresh / "dists" / SUITE / "Release"
    release_path.write_text(release)
    env = gpg_env(base / "gnupg")
    run("gpg", "--batch", "--yes", "--local-user", fingerprint, "--clearsign", "--output",
        release_path.with_name("InRelease"), release_path, env=env)  # fmt: skip
    run("gpg", "--batch", "--yes", "--local-user", fingerprint, "--armor", "--detach-sign", "--output",
        release_path.with_name("Release.gpg"), release_path, env=env)  # fmt: skip
    (fresh / KEY_NAME).write_text(run("gpg", "--batch", "--armor", "--export", fingerprint, env=env))
    # gpg started an agent for this GNUPGHOME; stop it so a build leaves no daemon behind.
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False, capture_output=True)
    (fresh / FINGERPRINT_NAME).write_text(fingerprint + "\n")
    # Swap the finished repository in, so a server running from it never serves a half-built one.
    old = base / "repo.old"
    shutil.rmtree(old, ignore_errors=True)
    if repo.exists():
        repo.rename(old)
    fresh.rename(repo)
    shutil.rmtree(old, ignore_errors=True)
    stamp.write_text(digest)
    print(f"standin-repo: built {repo} in {time.monotonic() - started:.1f} s, key {fingerprint}")


def pid_file() -> Path:
    return work_dir() / "http.pid"


def running_pid() -> int | None:
    try:
        pid = int(pid_file().read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/dists/{SUITE}/InRelease", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def url_for(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def serve(args: argparse.Namespace) -> None:
    repo = work_dir() / "repo"
    if not (repo / "dists" / SUITE / "InRelease").is_file():
        raise RepoError(f"no repository at {repo}; run `scripts/standin-repo build` first")
    url = url_for(args.port)
    if running_pid() is not None and answers(url):
        print(f"standin-repo: already serving {url}")
        return
    if answers(url):
        raise RepoError(f"port {args.port} is taken by another process; choose another with --port")
    log = (work_dir() / "http.log").open("ab")
    # Serves repo/ even after a rebuild swaps it, since the directory is named, not held open.
    server_argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(repo)]
    process = subprocess.Popen(
        [*server_argv, str(args.port)],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    pid_file().write_text(str(process.pid))
    (work_dir() / "http.port").write_text(str(args.port))
    for _ in range(50):
        if answers(url):
            print(f"standin-repo: serving {repo} at {url} (pid {process.pid})")
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise RepoError(f"the HTTP server did not start; see {work_dir() / 'http.log'}")


def stop(args: argparse.Namespace) -> None:
    pid = running_pid()
    if pid is None:
        print("standin-repo: not serving")
        return
    os.killpg(pid, signal.SIGTERM)
    pid_file().unlink(missing_ok=True)
    print(f"standin-repo: stopped (pid {pid})")


def served_port(default: int = DEFAULT_PORT) -> int:
    """The port `serve` last used."""
    port_file = work_dir() / "http.port"
    return int(port_file.read_text()) if port_file.is_file() else default


def status(args: argparse.Namespace) -> None:
    port = served_port()
    if running_pid() is not None and answers(url_for(port)):
        print(f"standin-repo: serving {work_dir() / 'repo'} at {url_for(port)}")
        return
    print("standin-repo: not serving")
    sys.exit(3)


def ansible_vars(args: argparse.Namespace) -> None:
    """The role variables that point tensorflow_serving at this repository, as JSON (for -e @file)."""
    fingerprint_file = work_dir() / "repo" / FINGERPRINT_NAME
    if not fingerprint_file.is_file():
        raise RepoError("no repository built yet; run `scripts/standin-repo build` first")
    port = served_port(args.port)
    print(json.dumps({
        "tensorflow_serving_apt_repo_url": url_for(port),
        "tensorflow_serving_apt_key_fingerprint": fingerprint_file.read_text().strip(),
    }, indent=2))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="scripts/standin-repo", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Files live under $TFSTACK_CACHE_DIR/standin-repo (now {work_dir()}).",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build and sign the repository (skipped when nothing changed)")
    serve_parser = commands.add_parser("serve", help="serve it on 127.0.0.1 in the background")
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    commands.add_parser("stop", help="stop serving")
    commands.add_parser("status", help="exit 0 when serving, 3 when not")
    vars_parser = commands.add_parser("ansible-vars", help="print the role variables for it (JSON)")
    vars_parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    handlers = {"build": build, "serve": serve, "stop": stop, "status": status, "ansible-vars": ansible_vars}
    try:
        handlers[args.command](args)
    except RepoError as error:
        print(f"standin-repo: {error}", file=sys.stderr)
        sys.exit(1)
    except subprocess.CalledProcessError as error:
        print(f"standin-repo: {error.cmd[0]} failed: {(error.stderr or '').strip()}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
