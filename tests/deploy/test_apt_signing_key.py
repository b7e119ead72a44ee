"""The repository signing key: a configured fingerprint is enforced, a changed key on the host is
replaced from the configured URL, an expired key at the URL is refused (apt would say EXPKEYSIG), and
an unreachable URL does not stop a run while the installed key is valid (it fails one that has none).
The URL is made unreachable as it happens after `make up`: the repository it belongs to stops answering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.deploy.deploy_support import box_shell, run_command
from tests.support.file_server import serving_folder
from tests.support.gnupg import new_key

pytestmark = [pytest.mark.box, pytest.mark.slow]

KEYRING = "/etc/apt/keyrings/tensorflow-serving.asc"


@pytest.fixture
def key_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server for key files (the box shares the host's network)."""
    folder = tmp_path / "keys"
    folder.mkdir()
    with serving_folder(folder) as url:
        yield url, folder


@pytest.fixture
def served_keyring(converged_box, host) -> Iterator[str]:
    """The keyring site.yml installed; put back if a test leaves another one on the box."""
    keyring = host.file(KEYRING).content_string
    yield keyring
    if not host.file(KEYRING).exists or host.file(KEYRING).content_string != keyring:
        converged_box.converge("site.yml", "--tags", "tfserving_install")


def install_phase(converged_box, **extra_vars):
    return converged_box.run("site.yml", "--tags", "tfserving_install", extra_vars=extra_vars or None)


def test_a_wrong_fingerprint_fails_the_play(converged_box, served_keyring: str, host) -> None:
    wrong = "0123 4567 89AB CDEF 0123  4567 89AB CDEF 0123 4567"
    run = install_phase(converged_box, tensorflow_serving_apt_key_fingerprint=wrong)
    assert run.returncode != 0
    assert "not the configured" in run.output and wrong.replace(" ", "") in run.output, run.output[-3000:]
    assert host.file(KEYRING).content_string == served_keyring


def test_a_changed_key_on_the_host_is_replaced_from_the_url(
    converged_box, host, served_keyring: str, tmp_path: Path
) -> None:
    intruder = new_key(tmp_path / "gnupg", "intruder <intruder@localhost>").armored
    box_shell(host, f"printf '%s' '{intruder}' > {KEYRING}")

    run = install_phase(converged_box)

    assert run.returncode == 0, run.output[-3000:]
    assert run.recap["changed"] >= 1
    assert host.file(KEYRING).content_string == served_keyring
    assert host.run("apt-get update -qq").rc == 0


def test_an_expired_key_at_the_url_is_refused(
    converged_box, host, served_keyring: str, key_server, tmp_path: Path
) -> None:
    url, folder = key_server
    (folder / "expired.asc").write_text(
        new_key(tmp_path / "gnupg", "expired <old@localhost>", made_at="20200101T000000!").armored
    )
    run = install_phase(
        converged_box,
        tensorflow_serving_apt_key_url=f"{url}/expired.asc",
        tensorflow_serving_apt_key_fingerprint="",
    )

    assert run.returncode != 0
    assert "EXPKEYSIG" in run.output and "expired" in run.output, run.output[-3000:]
    assert host.file(KEYRING).content_string == served_keyring, "an expired key must not be installed"


@pytest.fixture
def repository_down(converged_box) -> Iterator[str]:
    """The recorded stand-in repository stops answering (as TF Serving's does for a host that loses its
    route to it), and is served again on its port afterwards. Yields its key URL."""
    recorded = json.loads((converged_box.inventory.parent / "group_vars" / "all.json").read_text())
    url = recorded["tensorflow_serving_apt_repo_url"]
    run_command("tfstack-standin-repo", "stop")
    yield f"{url}/tensorflow-serving.release.pub.gpg"
    run_command("tfstack-standin-repo", "serve", "--port", str(urlsplit(url).port))


def test_the_plain_rerun_with_the_key_url_unreachable_warns_and_changes_nothing(
    converged_box, served_keyring: str, host, repository_down: str
) -> None:
    # The documented command, no -e. The package lists are fresh (service_common_apt_cache_valid_time),
    # so only the key's URL is asked for.
    run = converged_box.run("site.yml")
    assert run.returncode == 0, run.output[-3000:]
    assert f"WARNING: cannot fetch {repository_down}" in run.output, run.output[-3000:]
    assert run.recap["changed"] == 0, "\n".join(run.changed_tasks())
    assert host.file(KEYRING).content_string == served_keyring


def test_an_unreachable_key_url_without_a_valid_key_fails_with_one_message(
    converged_box, served_keyring: str, host, repository_down: str
) -> None:
    box_shell(host, f"rm -f {KEYRING}")
    run = install_phase(converged_box)
    assert run.returncode != 0
    message = " ".join(run.output.split())  # Ansible wraps long messages across lines
    assert (
        f"No valid signing key: cannot fetch {repository_down}" in message
        and f"the installed keyring {KEYRING} is missing" in message
    ), run.output[-3000:]
