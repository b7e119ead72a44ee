"""Keeps the latest predictions (the upload, a thumbnail and what the model said) in the upload
folder, under names the app generates, never the client's filename. Shared by all gunicorn workers
through the file system; the oldest entries beyond the limit are deleted."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tfserving_web.image_upload import CheckedImage
from tfserving_web.model_server import Prediction

log = logging.getLogger(__name__)

# <UTC time in µs, so names sort by age>-<random>, e.g. 20261129T123456789012-3f9a1c2b
ENTRY_ID = re.compile(r"^\d{8}T\d{12}-[0-9a-f]{8}$")
STORED_FILE = re.compile(r"^\d{8}T\d{12}-[0-9a-f]{8}\.(png|jpg|gif|bmp|webp|thumb\.png)$")


@dataclass(frozen=True)
class StoredPrediction:
    id: str
    image_file: str
    thumbnail_file: str
    model: str
    version: int
    class_id: int
    confidence: float
    created: str


def _new_id() -> str:
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1e6) % 1_000_000:06d}"
    return f"{stamp}-{secrets.token_hex(4)}"


def _write_atomically(path: Path, data: bytes) -> None:
    # Write then rename, so another worker listing the folder never sees half a file.
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as handle:
        handle.write(data)
    os.replace(handle.name, path)


class PredictionStore:
    def __init__(self, folder: str, keep: int) -> None:
        self.folder = Path(folder)
        self.keep = keep

    def save(self, image: CheckedImage, prediction: Prediction) -> StoredPrediction:
        self.folder.mkdir(parents=True, exist_ok=True)
        entry_id = _new_id()
        entry = StoredPrediction(
            id=entry_id,
            image_file=f"{entry_id}.{image.extension}",
            thumbnail_file=f"{entry_id}.thumb.png",
            model=prediction.model,
            version=prediction.version,
            class_id=prediction.class_id,
            confidence=prediction.probabilities[prediction.class_id]
            if 0 <= prediction.class_id < len(prediction.probabilities)
            else max(prediction.probabilities),
            created=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        )
        _write_atomically(self.folder / entry.image_file, image.original)
        _write_atomically(self.folder / entry.thumbnail_file, image.thumbnail_png)
        # The record is written last: an entry is listed only once its files exist.
        _write_atomically(self.folder / f"{entry_id}.json", json.dumps(asdict(entry)).encode())
        self._prune()
        return entry

    def _entry_ids(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        ids = [path.stem for path in self.folder.glob("*.json") if ENTRY_ID.match(path.stem)]
        return sorted(ids, reverse=True)

    def _prune(self) -> None:
        for entry_id in self._entry_ids()[self.keep :]:
            for path in self.folder.glob(f"{entry_id}.*"):
                # Another worker may be pruning the same entry at the same moment.
                path.unlink(missing_ok=True)

    def recent(self, count: int) -> list[StoredPrediction]:
        entries = []
        for entry_id in self._entry_ids()[:count]:
            try:
                record = json.loads((self.folder / f"{entry_id}.json").read_text())
                entries.append(StoredPrediction(**record))
            except (OSError, ValueError, TypeError) as error:
                log.warning("skipping stored prediction %s: %s", entry_id, error)
        return entries

    def path_of(self, filename: str) -> Path | None:
        """The stored file for a URL name, or None for names this store never generates."""
        if not STORED_FILE.match(filename):
            return None
        path = self.folder / filename
        return path if path.is_file() else None
