"""The cached image is named by a key of its recipe, so a changed package list builds a new one."""

from __future__ import annotations

from pathlib import Path

import pytest

from nspawn_box import rootfs_image

pytestmark = [pytest.mark.box]


def test_changing_the_package_list_changes_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    before = rootfs_image.image_path()
    monkeypatch.setattr(rootfs_image, "PACKAGES", (*rootfs_image.PACKAGES, "curl"))
    assert rootfs_image.image_path() != before


def test_package_order_does_not_change_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    before = rootfs_image.image_key()
    monkeypatch.setattr(rootfs_image, "PACKAGES", tuple(reversed(rootfs_image.PACKAGES)))
    assert rootfs_image.image_key() == before


def test_image_lives_in_the_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TFSTACK_CACHE_DIR", str(tmp_path))
    assert rootfs_image.image_path().parent == tmp_path / "box"
