"""`make up`'s mirror (TFSTACK_APT_SOURCE=mirror) without booting anything: the files `tfstack-fleet
mirror --record` writes, read back by Ansible itself. The mirror box gets its own ports and upstream and
takes no proxy; the local box, through the group vars recorded beside its inventory, installs from that
mirror (the whole path, which boots two boxes and converges both, is measured by
`python -m tfstack_bench.install_time`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from nspawn_box import fleet_inventory, local_mirror
from nspawn_box.inventory import inventory_text
from nspawn_box.settings import Box
from tests.support.paths import REPO_ROOT, VENV_BIN

UPSTREAM = {
    "tensorflow_serving_apt_repo_url": "http://127.0.0.1:8099",
    "tensorflow_serving_apt_key_fingerprint": "CFAED00FE89A771350F952D1EE0EC0EB44989B74",
}


def host_vars(inventory: Path, host: str) -> dict:
    """The variables Ansible gives a host from this inventory and the vars beside it."""
    completed = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(inventory), "--host", host],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(completed.stdout)


@pytest.fixture
def written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The mirror's inventory and the local box's, as `tfstack-fleet mirror --record .box` leaves them."""
    monkeypatch.setenv("TFSTACK_BOX_DIR", str(tmp_path))
    monkeypatch.chdir(REPO_ROOT)  # the wheelhouse projects are named from the repository root
    mirror_inventory = fleet_inventory.write([local_mirror.MEMBER], UPSTREAM, local_mirror.site())
    local_mirror.record(tmp_path)
    box_inventory = tmp_path / "inventory.ini"
    box_inventory.write_text(inventory_text(Box("tfstack", 2222)))
    return mirror_inventory, box_inventory


def test_the_mirror_box_follows_upstream_on_its_own_ports_without_a_proxy(written) -> None:
    mirror = host_vars(written[0], local_mirror.MEMBER.name)
    assert mirror["package_mirror_upstream_url"] == UPSTREAM["tensorflow_serving_apt_repo_url"]
    assert (
        mirror["package_mirror_upstream_key_fingerprint"]
        == UPSTREAM["tensorflow_serving_apt_key_fingerprint"]
    )
    assert (mirror["package_mirror_http_port"], mirror["package_mirror_os_proxy_port"]) == (8091, 3143)
    assert mirror["service_common_apt_proxy"] == "" and mirror["service_common_wheelhouse_url"] == ""
    assert "BEGIN PGP PRIVATE KEY BLOCK" in mirror["package_mirror_signing_key"]


def test_the_local_box_installs_everything_from_the_mirror(written) -> None:
    box = host_vars(written[1], "tfstack")
    mirror_url = host_vars(written[0], local_mirror.MEMBER.name)["package_mirror_public_url"]
    assert mirror_url == "http://127.0.0.1:8091"
    assert box["tensorflow_serving_apt_repo_url"] == f"{mirror_url}/tensorflow-serving-apt"
    assert box["tensorflow_serving_apt_key_url"].startswith(f"{mirror_url}/tensorflow-serving-apt/")
    assert box["service_common_wheelhouse_url"] == f"{mirror_url}/wheels/"
    assert box["service_common_apt_proxy"] == "http://127.0.0.1:3143"
    fingerprint = (written[0].parent / "mirror-signing-key.fingerprint").read_text().strip()
    assert box["tensorflow_serving_apt_key_fingerprint"] == fingerprint
