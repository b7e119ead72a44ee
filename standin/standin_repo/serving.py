"""Serving the repository over HTTP on 127.0.0.1 in the background, and finding that server again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from standin_repo.common import DEFAULT_PORT, PROG, SUITE, RepoError, repo_dir, say, work_dir

START_TIMEOUT_SECONDS = 5.0


def url_for(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def served_port(default: int = DEFAULT_PORT) -> int:
    """The port `serve` last used."""
    port_file = work_dir() / "http.port"
    return int(port_file.read_text()) if port_file.is_file() else default


def running_pid() -> int | None:
    try:
        pid = int((work_dir() / "http.pid").read_text())
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


def serve(port: int) -> None:
    repo = repo_dir()
    if not (repo / "dists" / SUITE / "InRelease").is_file():
        raise RepoError(f"no repository at {repo}; run `{PROG} build` first")
    url = url_for(port)
    if answers(url):
        if running_pid() is not None:
            say(f"already serving {url}")
            return
        raise RepoError(f"port {port} is taken by another process; choose another with --port")
    # Serves repo/ even after a rebuild swaps it, since the directory is named, not held open.
    server_argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(repo)]
    with (work_dir() / "http.log").open("ab") as log:
        process = subprocess.Popen(
            [*server_argv, str(port)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (work_dir() / "http.pid").write_text(str(process.pid))
    (work_dir() / "http.port").write_text(str(port))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        if answers(url):
            say(f"serving {repo} at {url} (pid {process.pid})")
            return
        time.sleep(0.1)
    raise RepoError(f"the HTTP server did not start; see {work_dir() / 'http.log'}")


def stop() -> None:
    pid = running_pid()
    if pid is None:
        say("not serving")
        return
    os.killpg(pid, signal.SIGTERM)
    (work_dir() / "http.pid").unlink(missing_ok=True)
    say(f"stopped (pid {pid})")


def status() -> int:
    """0 when serving, 3 when not (as `systemctl status`)."""
    url = url_for(served_port())
    if running_pid() is not None and answers(url):
        say(f"serving {repo_dir()} at {url}")
        return 0
    say("not serving")
    return 3
