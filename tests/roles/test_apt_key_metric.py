"""service_common apt_key's expiry metric for node exporter's textfile collector, run on this machine.

A throw-away key served on loopback is installed into a keyring under tmp_path, with the metric folder
there too: check mode writes nothing, the first run writes the sample, the second changes nothing, and
another keyring with a key that never expires keeps the first sample and adds none of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.file_server import serving_folder
from tests.support.gnupg import new_key
from tests.support.playbooks import PlaybookRun, play_here

pytestmark = pytest.mark.slow

METRIC = "tfstack_apt_signing_key_expiry_timestamp_seconds"
PLAYBOOK = """
- name: Install a signing key the way the roles do
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Install it
      ansible.builtin.import_role:
        name: service_common
        tasks_from: apt_key
      vars:
        service_common_apt_key_url: "{{ key_url }}"
        service_common_apt_key_fingerprint: ""
        service_common_apt_keyring: "{{ keyring }}"
        service_common_apt_key_expiry_metric_dir: "{{ metric_dir }}"
"""


@pytest.fixture
def key_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server of key files: (its URL, the folder it serves)."""
    folder = tmp_path / "served"
    folder.mkdir()
    with serving_folder(folder) as url:
        yield url, folder


def install(tmp_path: Path, key_url: str, keyring: Path, metric_dir: Path | str, *args: str) -> PlaybookRun:
    extra = {"key_url": key_url, "keyring": str(keyring), "metric_dir": str(metric_dir)}
    run = play_here(PLAYBOOK, tmp_path, extra, *args)
    assert run.returncode == 0, run.output[-3000:]
    return run


def test_key_expiry_metric_is_written_once_and_shared_by_keyrings(tmp_path: Path, key_folder) -> None:
    url, served = key_folder
    key = new_key(tmp_path / "gpg-expiring", "Expiring <e@example.invalid>", "1y")
    fingerprint, expires = key.fingerprint, key.expires
    (served / "expiring.asc").write_text(key.armored)
    metric_dir = tmp_path / "node-exporter"
    keyring = tmp_path / "expiring.asc"
    prom = metric_dir / "tfstack_apt_key.prom"

    install(tmp_path, f"{url}/expiring.asc", keyring, metric_dir, "--check")
    assert not metric_dir.exists() and not keyring.exists(), "check mode must write nothing"

    install(tmp_path, f"{url}/expiring.asc", keyring, metric_dir)
    sample = f'{METRIC}{{keyring="{keyring}",fingerprint="{fingerprint}"}} {expires}'
    assert expires and sample in prom.read_text().splitlines()
    families = {family.name: family for family in text_string_to_metric_families(prom.read_text())}
    assert families[METRIC].type == "gauge", "the textfile collector drops a file it cannot parse"
    assert (metric_dir.stat().st_mode & 0o777, prom.stat().st_mode & 0o777) == (0o755, 0o644)

    again = install(tmp_path, f"{url}/expiring.asc", keyring, metric_dir)
    assert again.recap["changed"] == 0, again.changed_tasks()

    lasting = new_key(tmp_path / "gpg-lasting", "Lasting <l@example.invalid>", "never")
    (served / "lasting.asc").write_text(lasting.armored)
    install(tmp_path, f"{url}/lasting.asc", tmp_path / "lasting.asc", metric_dir)
    samples = [line for line in prom.read_text().splitlines() if line.startswith(METRIC)]
    assert lasting.expires == "", "gpg lists no expiry for a key that never expires"
    assert samples == [sample], "a key that never expires has no sample; others' stay"


def test_an_empty_metric_folder_turns_the_metric_off(tmp_path: Path, key_folder) -> None:
    url, served = key_folder
    (served / "key.asc").write_text(new_key(tmp_path / "gpg", "Off <o@example.invalid>", "1y").armored)
    run = install(tmp_path, f"{url}/key.asc", tmp_path / "key.asc", "")
    assert (tmp_path / "key.asc").exists()
    assert "Write the key's expiry as a metric" in run.output and not list(tmp_path.rglob("*.prom"))
