"""The local apt repository (tfstack-standin-repo): built, signed and served for real; apt must verify it.

Nothing is installed on the host: apt runs with a private configuration (APT_CONFIG), its own lists,
cache and a copy of the dpkg status file, and only downloads or simulates. The full install is done
inside the box by the deployment tests.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.support.gnupg import new_key
from tests.support.network import free_port
from tests.support.paths import REPO_ROOT, VENV_BIN
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("standin_only")]

COMMAND = VENV_BIN / "tfstack-standin-repo"
PACKAGES = ("tensorflow-model-server", "tensorflow-model-server-universal")
LIB_DIR = "usr/lib/tensorflow-model-server-standin"

if shutil.which("apt-get") is None or shutil.which("gpg") is None:
    pytest.skip("needs apt-get and gpg (scripts/install-host-packages)", allow_module_level=True)


def run(*argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, check: bool = True):
    completed = subprocess.run(
        [str(a) for a in argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    if check:
        assert completed.returncode == 0, f"{argv} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def standin_repo(
    *arguments: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The installed command, run from the repository root as make and scripts/stack-up run it."""
    return run(COMMAND, *arguments, env=env, cwd=REPO_ROOT, check=check)


@pytest.fixture(scope="module")
def served_repo(tmp_path_factory: pytest.TempPathFactory):
    """A repository built into a private cache dir (own key) and served on a free port."""
    cache = tmp_path_factory.mktemp("standin-cache")
    env = {**os.environ, "TFSTACK_CACHE_DIR": str(cache)}
    started = time.monotonic()
    standin_repo("build", env=env)
    print(f"\ntfstack-standin-repo build (cold, with key generation): {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    again = standin_repo("build", env=env)
    print(f"tfstack-standin-repo build (nothing changed): {time.monotonic() - started:.2f} s")
    assert "up to date" in again.stdout
    port = free_port()
    standin_repo("serve", "--port", str(port), env=env)
    try:
        yield {"root": cache / "standin-repo" / "repo", "url": f"http://127.0.0.1:{port}", "env": env}
    finally:
        standin_repo("stop", env=env)
    assert standin_repo("status", env=env, check=False).returncode == 3


def test_sources_missing_from_the_working_directory_is_one_line(tmp_path) -> None:
    env = {**os.environ, "TFSTACK_CACHE_DIR": str(tmp_path / "cache")}
    result = run(COMMAND, "build", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"tfstack-standin-repo: no stand-in source at {tmp_path}/standin (no pyproject.toml); "
        "run from the repository root or pass --standin-source"
    ]
    assert not (tmp_path / "cache" / "standin-repo" / "repo").exists()


class IsolatedApt:
    """apt-get with its own configuration, lists, cache and status file; nothing touches the host's."""

    def __init__(self, root: Path, repo_url: str, key: Path) -> None:
        self.root = root
        for directory in (
            "etc/apt.conf.d",
            "etc/sources.list.d",
            "etc/preferences.d",
            "etc/trusted.gpg.d",
            "state/lists/partial",
            "cache/archives/partial",
            "download",
        ):
            (root / directory).mkdir(parents=True, exist_ok=True)
        shutil.copy("/var/lib/dpkg/status", root / "status")
        (root / "etc" / "sources.list").write_text(
            f"deb [arch=amd64 signed-by={key}] {repo_url} stable {' '.join(PACKAGES)}\n"
        )
        (root / "apt.conf").write_text(
            f'Dir::Etc "{root}/etc";\n'
            f'Dir::Etc::parts "{root}/etc/apt.conf.d";\n'
            f'Dir::State "{root}/state";\n'
            f'Dir::State::status "{root}/status";\n'
            f'Dir::Cache "{root}/cache";\n'
            'APT::Architecture "amd64";\n'
            'APT::Sandbox::User "root";\n'
            'Debug::NoLocking "true";\n'
        )
        self.env = {**os.environ, "APT_CONFIG": str(root / "apt.conf"), "LC_ALL": "C"}

    def __call__(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("apt-get", *arguments, env=self.env, cwd=self.root / "download", check=check)


def armored_key_as_asc(served_repo, directory: Path) -> Path:
    # The repository publishes an ASCII-armored key named *.gpg, as TF Serving's does; apt's signed-by
    # wants armored keys in a *.asc file (or a binary keyring), so it is saved under that name.
    with urllib.request.urlopen(
        f"{served_repo['url']}/tensorflow-serving.release.pub.gpg", timeout=10
    ) as response:
        armored = response.read()
    assert armored.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    key = directory / "tensorflow-serving.asc"
    key.write_bytes(armored)
    return key


def test_layout_matches_the_official_repository(served_repo) -> None:
    root: Path = served_repo["root"]
    for component in PACKAGES:
        index = root / "dists" / "stable" / component / "binary-amd64"
        packages = (index / "Packages").read_text()
        assert gzip.decompress((index / "Packages.gz").read_bytes()).decode() == packages
        assert f"Package: {component}\n" in packages
        assert f"Filename: pool/{component}/" in packages
    release = (root / "dists" / "stable" / "Release").read_text()
    assert "Suite: stable" in release and "SHA256:" in release
    assert "Components: tensorflow-model-server tensorflow-model-server-universal" in release
    assert (
        (root / "dists" / "stable" / "InRelease").read_text().startswith("-----BEGIN PGP SIGNED MESSAGE-----")
    )
    assert (root / "dists" / "stable" / "Release.gpg").is_file()
    fingerprint = (root / "tensorflow-serving.release.fingerprint").read_text().strip()
    assert len(fingerprint) == 40


def test_apt_verifies_the_signature_downloads_and_resolves_the_package(served_repo, tmp_path) -> None:
    apt = IsolatedApt(tmp_path / "apt", served_repo["url"], armored_key_as_asc(served_repo, tmp_path))
    update = apt("update")
    assert "NO_PUBKEY" not in update.stdout + update.stderr
    assert "not signed" not in update.stdout + update.stderr
    apt("download", "tensorflow-model-server")
    (deb,) = (tmp_path / "apt" / "download").glob("tensorflow-model-server_*_amd64.deb")
    fields = run("dpkg-deb", "--field", deb).stdout
    assert "Architecture: amd64" in fields
    assert "Conflicts: tensorflow-model-server-universal" in fields
    assert "Provides: tensorflow-model-server-universal" in fields
    assert "Depends: python3 (>= 3.11), python3-venv" in fields
    simulated = apt("install", "--simulate", "--no-install-recommends", "tensorflow-model-server")
    assert "Inst tensorflow-model-server " in simulated.stdout


def test_the_package_carries_the_standin_wheel_and_its_constraints(served_repo, tmp_path) -> None:
    (deb,) = (served_repo["root"] / "pool" / "tensorflow-model-server").glob("*.deb")
    info = run("dpkg-deb", "--info", deb).stdout
    for script in ("postinst", "postrm"):
        assert f" {script} " in info, info
    root = tmp_path / "unpacked"
    run("dpkg-deb", "--extract", deb, root)
    shipped = REPO_ROOT / "requirements" / "constraints.txt"
    assert (root / LIB_DIR / "requirements" / "constraints.txt").read_bytes() == shipped.read_bytes()
    (wheel,) = (root / LIB_DIR / "wheels").glob("tfserving_standin-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"tfserving_standin/__main__.py", "tfserving_standin/server.py"} <= names
    assert not any(name.startswith(("build/", "standin/")) or "__pycache__" in name for name in names)
    wrapper = (root / "usr/bin/tensorflow_model_server").read_text()
    assert 'exec "$VENV/bin/python" -m tfserving_standin "$@"' in wrapper
    assert "PYTHONPATH" not in wrapper
    postinst = run("dpkg-deb", "--info", deb, "postinst").stdout
    assert '-c "$CONSTRAINTS" "$1"' in postinst and "/etc/default/tensorflow-model-server-standin" in postinst


def test_the_two_packages_replace_each_other(served_repo, tmp_path) -> None:
    apt = IsolatedApt(tmp_path / "apt", served_repo["url"], armored_key_as_asc(served_repo, tmp_path))
    apt("update")
    apt("download", "tensorflow-model-server")
    (deb,) = (tmp_path / "apt" / "download").glob("tensorflow-model-server_*_amd64.deb")
    # Pretend (in the private status file only) that the AVX build is installed.
    control = run("dpkg-deb", "--field", deb).stdout
    with (tmp_path / "apt" / "status").open("a") as status:
        status.write(
            "\n"
            + control.replace(
                "Package: tensorflow-model-server\n",
                "Package: tensorflow-model-server\nStatus: install ok installed\n",
            )
        )
    simulated = apt("install", "--simulate", "--no-install-recommends", "tensorflow-model-server-universal")
    assert "Remv tensorflow-model-server " in simulated.stdout
    assert "Inst tensorflow-model-server-universal " in simulated.stdout


@pytest.fixture
def tampered_copy(served_repo, tmp_path):
    """A copy of the repository whose InRelease was edited after signing, served on its own port."""
    copy = tmp_path / "tampered"
    shutil.copytree(served_repo["root"], copy)
    in_release = copy / "dists" / "stable" / "InRelease"
    in_release.write_text(in_release.read_text().replace("Suite: stable", "Suite: stab1e", 1))
    (copy / "dists" / "stable" / "Release.gpg").unlink()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(copy), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        urllib.request.urlopen(f"{url}/dists/stable/InRelease", timeout=1).close()
        return True

    wait_for(answers, "the tampered copy to be served", timeout=10, interval=0.1, tolerate=(OSError,))
    yield url
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=10)


def test_apt_refuses_a_tampered_release(served_repo, tampered_copy, tmp_path) -> None:
    apt = IsolatedApt(tmp_path / "apt", tampered_copy, armored_key_as_asc(served_repo, tmp_path))
    update = apt("update", check=False)
    output = update.stdout + update.stderr
    assert update.returncode != 0 or "W:" in output
    assert "BADSIG" in output or "signatures were invalid" in output
    assert not list((tmp_path / "apt" / "state" / "lists").glob("*_Packages*"))


def test_apt_refuses_a_repository_signed_by_another_key(served_repo, tmp_path) -> None:
    other_key = tmp_path / "other.asc"
    other_key.write_text(new_key(tmp_path / "gnupg", "someone else <other@localhost>").armored)
    apt = IsolatedApt(tmp_path / "apt", served_repo["url"], other_key)
    update = apt("update", check=False)
    output = update.stdout + update.stderr
    assert "NO_PUBKEY" in output
    assert "is not signed" in output
    assert not list((tmp_path / "apt" / "state" / "lists").glob("*_Packages*"))
