"""Keeps the latest predictions (the upload, a thumbnail and what the model said) in the upload
folder, under names the app generates, never the client's filename. Shared by all gunicorn workers
through the file system; the oldest entries beyond the limit in count, and all older than the limit in
age, are deleted. Each entry records a hash of the visitor who made it: the page lists, and serves the
files of, only the visitor's own entries (the JSON API's uploads belong to no visitor).

The request only names the entry (`new_entry`); the files are written by the worker's upload writer
(`queue`, `writer`), which also makes the thumbnail and prunes: pruning lists the
folder, so it is done once per `prune_every` stored entries, not for each one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tfserving_web.model_server import Prediction
from tfserving_web.uploads.images import CheckedImage, thumbnail_png

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
    # visitor_tag() of the visitor's id; "" for uploads through the JSON API (listed to nobody).
    visitor: str = ""


def visitor_tag(visitor_id: str) -> str:
    """What the record keeps of a visitor's id: not the id itself, so the folder's contents do not
    let anyone act as that visitor."""
    return hashlib.sha256(visitor_id.encode()).hexdigest()[:32] if visitor_id else ""


def id_stamp(seconds: float) -> str:
    """The time part of an id made at `seconds` (since the epoch): ids compare as strings in time
    order, so an age check is a string comparison, with no date parsing per entry."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds)) + f"{int(seconds * 1e6) % 1_000_000:06d}"


def _new_id() -> str:
    return f"{id_stamp(time.time())}-{secrets.token_hex(4)}"


def _write_new(path: Path, data: bytes) -> None:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as handle:
        handle.write(data)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write then rename, so another worker listing the folder never sees half a file. The names are
    unique (a random part) and each file is written by one thread, so the temporary name is too."""
    temporary = path.with_name(f".tmp-{path.name}")
    _write_new(temporary, data)
    os.replace(temporary, path)


class PredictionStore:
    def __init__(self, folder: str, keep: int, max_age: float = 24 * 3600) -> None:
        self.folder = Path(folder)
        self.keep = keep
        self.max_age = max_age
        # Between two prunes each worker adds at most this many entries: the folder holds at most
        # keep + prune_every x (number of workers) of them.
        self.prune_every = max(1, keep // 10)
        self._since_prune = 0
        self._folder_made = False

    def new_entry(self, image: CheckedImage, prediction: Prediction, visitor: str = "") -> StoredPrediction:
        """The entry's names and record, without touching the disk (cheap: on the request path)."""
        entry_id = _new_id()
        return StoredPrediction(
            id=entry_id,
            image_file=f"{entry_id}.{image.extension}",
            # Only a visitor's page shows thumbnails: the JSON API's uploads (no visitor) get none,
            # which saves the writer 0.07 ms of CPU per API call (measured; it competes for the cores).
            thumbnail_file=f"{entry_id}.thumb.png" if visitor else "",
            model=prediction.model,
            version=prediction.version,
            class_id=prediction.class_id,
            confidence=prediction.probabilities[prediction.class_id]
            if 0 <= prediction.class_id < len(prediction.probabilities)
            else max(prediction.probabilities),
            created=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            visitor=visitor_tag(visitor),
        )

    def write(self, entry: StoredPrediction, original: bytes) -> None:
        """Write the entry's files (from one process per web worker: its upload writer), then prune
        once every `prune_every` entries."""
        if not self._folder_made:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._folder_made = True
        # Only the record is written then renamed: it is written last, and nothing names the upload
        # or the thumbnail before an entry is listed, so those two need no rename.
        _write_new(self.folder / entry.image_file, original)
        if entry.thumbnail_file:
            _write_new(self.folder / entry.thumbnail_file, thumbnail_png(original))
        # Its fields are plain values: vars() without asdict's deep copy.
        _write_atomically(self.folder / f"{entry.id}.json", json.dumps(vars(entry)).encode())
        self._since_prune += 1
        if self._since_prune >= self.prune_every:
            self._since_prune = 0
            self._prune()

    def _files_by_entry(self) -> dict[str, list[str]]:
        """One listing of the folder: entry id -> the names of its files."""
        by_entry: dict[str, list[str]] = {}
        try:
            with os.scandir(self.folder) as listing:
                for item in listing:
                    entry_id, dot, _ = item.name.partition(".")
                    if dot and ENTRY_ID.match(entry_id):
                        by_entry.setdefault(entry_id, []).append(item.name)
        except FileNotFoundError:
            pass
        return by_entry

    def _entry_ids(self, by_entry: dict[str, list[str]] | None = None) -> list[str]:
        """Ids of the complete entries (their record is written last), newest first."""
        by_entry = self._files_by_entry() if by_entry is None else by_entry
        complete = [entry_id for entry_id, names in by_entry.items() if f"{entry_id}.json" in names]
        return sorted(complete, reverse=True)

    def _oldest_kept(self) -> str:
        """Entries whose id sorts before this are older than max_age."""
        return id_stamp(time.time() - self.max_age)

    def prune(self) -> None:
        """Delete the entries beyond `keep` and those older than `max_age` (the writer also calls this
        when it starts, so a restart clears what expired while no one uploaded)."""
        self._prune()

    def _prune(self) -> None:
        by_entry = self._files_by_entry()
        ids = self._entry_ids(by_entry)
        oldest_kept = self._oldest_kept()
        for entry_id in ids[: self.keep]:
            if entry_id < oldest_kept:
                for name in by_entry[entry_id]:
                    (self.folder / name).unlink(missing_ok=True)
        for entry_id in ids[self.keep :]:
            for name in by_entry[entry_id]:
                # Another worker may be pruning the same entry at the same moment.
                (self.folder / name).unlink(missing_ok=True)

    def _record(self, entry_id: str) -> StoredPrediction | None:
        try:
            return StoredPrediction(**json.loads((self.folder / f"{entry_id}.json").read_text()))
        except FileNotFoundError:
            return None  # pruned meanwhile
        except (OSError, ValueError, TypeError) as error:
            log.warning("skipping stored prediction %s: %s", entry_id, error)
            return None

    def recent(self, count: int, visitor: str) -> list[StoredPrediction]:
        """This visitor's latest entries, newest first, none older than max_age."""
        tag = visitor_tag(visitor)
        if not tag:
            return []
        entries: list[StoredPrediction] = []
        oldest_kept = self._oldest_kept()
        for entry_id in self._entry_ids():
            if len(entries) >= count or entry_id < oldest_kept:
                break  # newest first: all the rest are older
            record = self._record(entry_id)
            if record is not None and record.visitor == tag:
                entries.append(record)
        return entries

    def path_of(self, filename: str, visitor: str) -> Path | None:
        """The stored file for a URL name, or None for names this store never generates, for files
        of another visitor's entries, and for expired ones."""
        tag = visitor_tag(visitor)
        if not tag or not STORED_FILE.match(filename):
            return None
        entry_id = filename.partition(".")[0]
        record = self._record(entry_id)
        if record is None or record.visitor != tag or entry_id < self._oldest_kept():
            return None
        path = self.folder / filename
        return path if path.is_file() else None


def start_expiry_thread(store: PredictionStore) -> threading.Thread:
    """A daemon thread of the worker that deletes expired entries every `expiry_interval(store)`
    seconds, so uploads are gone soon after UPLOADS_MAX_AGE even when no one uploads (the writer
    prunes only as it writes). Started on a worker's first request (any request: HAProxy's health
    checks count); a listing of the folder each time, a millisecond for the default 100 entries."""

    def expire() -> None:
        while True:
            time.sleep(expiry_interval(store))
            try:
                store.prune()
            except OSError as error:
                log.warning("could not delete expired uploads in %s: %s", store.folder, error)

    thread = threading.Thread(target=expire, name="upload-expiry", daemon=True)
    thread.start()
    return thread


def expiry_interval(store: PredictionStore) -> float:
    """Seconds between two deletions of expired entries: a quarter of the age limit, 1 s to 10 min."""
    return min(600.0, max(1.0, store.max_age / 4))
