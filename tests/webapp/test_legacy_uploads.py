"""An upgrade from tfserving-web 0.2, which kept each upload as files in the upload folder: the first
upload writer that starts moves them into the database and deletes the files."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from tests.webapp.webtest_support import png_bytes
from tfserving_web.uploads.store import PredictionStore, id_stamp, visitor_tag

VISITOR = "v" * 32


def write_legacy_entry(folder: Path, entry_id: str, original: bytes, visitor: str) -> None:
    """One entry as 0.2 wrote it: the upload, a thumbnail for a visitor's, and the record last."""
    (folder / f"{entry_id}.png").write_bytes(original)
    record = {
        "id": entry_id,
        "image_file": f"{entry_id}.png",
        "thumbnail_file": f"{entry_id}.thumb.png" if visitor else "",
        "model": "digits",
        "version": 3,
        "class_id": 7,
        "confidence": 0.5,
        "created": "2026-11-30 12:00:00 UTC",
        "visitor": visitor_tag(visitor),
    }
    if visitor:
        (folder / f"{entry_id}.thumb.png").write_bytes(b"an old thumbnail")
    (folder / f"{entry_id}.json").write_text(json.dumps(record))


def test_the_first_writer_moves_the_old_files_into_the_database(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    now = time.time()
    fresh, expired = f"{id_stamp(now - 60)}-0000000a", f"{id_stamp(now - 7200)}-0000000b"
    api_upload = f"{id_stamp(now - 30)}-0000000c"
    original = png_bytes(Image.effect_noise((20, 20), 80))
    write_legacy_entry(folder, fresh, original, VISITOR)
    write_legacy_entry(folder, expired, original, VISITOR)
    write_legacy_entry(folder, api_upload, original, "")
    (folder / f".tmp-{id_stamp(now)}-0000000d.json").write_text("{cut short")  # a write cut short
    (folder / f"{id_stamp(now)}-0000000e.png").write_bytes(original)  # an upload without its record
    (folder / "README.operator").write_text("not ours")
    # A record naming a file outside the folder is not followed.
    (tmp_path / "secret.png").write_bytes(original)
    outside = f"{id_stamp(now - 10)}-0000000f"
    write_legacy_entry(folder, outside, original, VISITOR)
    record = json.loads((folder / f"{outside}.json").read_text())
    (folder / f"{outside}.json").write_text(json.dumps({**record, "image_file": "../secret.png"}))

    subprocess.run(
        [sys.executable, "-m", "tfserving_web.uploads.writer", str(folder), "100", "3600"],
        input=b"",
        check=True,
        timeout=60,
    )

    store = PredictionStore(str(folder), keep=100, max_age=3600)
    [moved] = store.recent(10, VISITOR)
    assert (moved.id, moved.version, moved.class_id, moved.image_file) == (fresh, 3, 7, f"{fresh}.png")
    picture = store.picture(moved.image_file, VISITOR)
    assert picture is not None and picture.data == original
    thumbnail = store.picture(moved.thumbnail_file, VISITOR)
    assert thumbnail is not None and thumbnail.data.startswith(b"\x89PNG")  # made again
    assert store.has(api_upload) and not store.has(expired) and not store.has(outside)
    assert (tmp_path / "secret.png").exists()
    leftovers = sorted(path.name for path in folder.iterdir() if not path.name.startswith("uploads.sqlite3"))
    assert leftovers == ["README.operator"]
