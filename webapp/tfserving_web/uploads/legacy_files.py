"""Moves the uploads that tfserving-web 0.2 kept as files into the database, once, when a writer
starts: `<id>.json` (the record), `<id>.<extension>` (the upload) and `<id>.thumb.png`, beside
`.tmp-*` leftovers of writes cut short. Without this, an upgrade would leave them on disk for good
(nothing prunes them any more) and empty visitors' lists. Expired entries go with the prune the
writer runs next.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from pathlib import Path

from tfserving_web.uploads.store import (
    ENTRY_ID_PATTERN,
    PICTURE_EXTENSIONS,
    STORED_FILE,
    THUMBNAIL,
    PredictionStore,
    StoredPrediction,
)

log = logging.getLogger(__name__)

# An entry's files as 0.2 named them: its pictures, its record (.json), and temporary names of either.
LEGACY_FILE = re.compile(
    rf"^(\.tmp-)?{ENTRY_ID_PATTERN}\.({'|'.join(map(re.escape, (*PICTURE_EXTENSIONS, 'json')))})$"
)


def _entry_of(record: Path) -> tuple[StoredPrediction, bytes] | None:
    """The entry a record file describes, with its upload's bytes; None if it is incomplete."""
    try:
        fields = json.loads(record.read_text())
        image_file = fields.pop("image_file")
        del fields["thumbnail_file"]
        # Only the upload the record's own id names, in this folder.
        name = STORED_FILE.match(image_file)
        if name is None or name.groups()[0] != fields["id"] or name.groups()[1] == THUMBNAIL:
            raise ValueError(f"unexpected image file {image_file!r}")
        original = (record.parent / image_file).read_bytes()
        entry = StoredPrediction(image_extension=name.groups()[1], **fields)
    except (OSError, ValueError, TypeError, KeyError) as error:
        log.warning("not moving stored prediction %s into the database: %s", record.name, error)
        return None
    return entry, original


def move_into(store: PredictionStore) -> int:
    """Move the folder's 0.2 entries into the store, then delete their files; the number moved."""
    try:
        names = [name for name in os.listdir(store.folder) if LEGACY_FILE.match(name)]
    except FileNotFoundError:
        return 0
    if not names:
        return 0
    records = sorted(store.folder / name for name in names if name.endswith(".json") and name[0] != ".")
    entries = [entry for entry in map(_entry_of, records) if entry is not None]
    try:
        store.write(entries)  # thumbnails are made again; the writer prunes what expired next
    except sqlite3.IntegrityError:
        return 0  # another worker's writer, started at the same moment, moved them
    for name in names:
        (store.folder / name).unlink(missing_ok=True)
    log.warning("moved %d stored prediction(s) from files into %s", len(entries), store.path)
    return len(entries)
