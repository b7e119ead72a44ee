"""Keeps the latest predictions (the upload, a thumbnail and what the model said) in one SQLite
database in the upload folder, `uploads.sqlite3`, shared by all gunicorn workers, under ids the app
generates (never the client's filename). The oldest entries beyond the limit in count, and all older
than the limit in age, are deleted. Each entry records a hash of the visitor who made it: the page
lists, and serves the pictures of, only the visitor's own entries (the JSON API's uploads belong to no
visitor).

The request only names the entry (`new_entry`); it is written by the worker's upload writer (`queue`,
`writer`), which also makes the thumbnail and prunes. A batch of uploads is one transaction.

Why a database and not a file per picture: each upload cost the writer two file creations, a rename
and, on pruning, two deletions, and those file-system calls were what storing cost the answers on a
2-core host (the writer competes for the cores). A transaction writes a few pages of the write-ahead
log for a whole batch. `tfstack-bench-app` prints the writer's CPU per upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tfserving_web.model_server import Prediction
from tfserving_web.uploads.images import EXTENSIONS, CheckedImage, thumbnail_png

log = logging.getLogger(__name__)

DATABASE_NAME = "uploads.sqlite3"
# How long a connection waits for another process's write transaction (each takes milliseconds).
BUSY_SECONDS = 10.0
# <UTC time in µs, so ids sort by age>-<random>, e.g. 20261129T123456789012-3f9a1c2b
ENTRY_ID_PATTERN = r"\d{8}T\d{12}-[0-9a-f]{8}"
THUMBNAIL = "thumb.png"
# The names the page uses for an entry's pictures: <id>.<extension of the upload> and <id>.thumb.png.
PICTURE_EXTENSIONS = (*EXTENSIONS.values(), THUMBNAIL)
STORED_FILE = re.compile(rf"^({ENTRY_ID_PATTERN})\.({'|'.join(map(re.escape, PICTURE_EXTENSIONS))})$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY,        -- sorts by age: an age check is a comparison of ids
    image_extension TEXT NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    class_id INTEGER NOT NULL,
    confidence REAL NOT NULL,
    created TEXT NOT NULL,
    visitor TEXT NOT NULL,      -- visitor_tag(); '' for the JSON API's uploads, listed to nobody
    image BLOB NOT NULL,
    thumbnail BLOB              -- only for a visitor's uploads: only the page shows thumbnails
);
CREATE INDEX IF NOT EXISTS predictions_by_visitor ON predictions (visitor, id);
"""
_HAS_TABLE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'predictions'"
_INSERT = "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# The record's columns, in StoredPrediction's field order.
_RECORD = "id, image_extension, model, version, class_id, confidence, created, visitor"
_RECENT = f"SELECT {_RECORD} FROM predictions WHERE visitor = ? AND id >= ? ORDER BY id DESC LIMIT ?"
_PICTURE = {
    False: "SELECT image_extension, image FROM predictions WHERE id = ? AND visitor = ? AND id >= ?",
    True: "SELECT 'png', thumbnail FROM predictions WHERE id = ? AND visitor = ? AND id >= ?",
}
_DELETE_EXPIRED = "DELETE FROM predictions WHERE id < ?"
# A missing OFFSET row makes the bound NULL, and `id < NULL` deletes nothing.
_DELETE_BEYOND_KEPT = (
    "DELETE FROM predictions WHERE id < (SELECT id FROM predictions ORDER BY id DESC LIMIT 1 OFFSET ?)"
)


@dataclass(frozen=True)
class StoredPrediction:
    id: str
    image_extension: str
    model: str
    version: int
    class_id: int
    confidence: float
    created: str
    # visitor_tag() of the visitor's id; "" for uploads through the JSON API (listed to nobody).
    visitor: str = ""

    @property
    def image_file(self) -> str:
        return f"{self.id}.{self.image_extension}"

    @property
    def thumbnail_file(self) -> str:
        return f"{self.id}.{THUMBNAIL}"


@dataclass(frozen=True)
class StoredPicture:
    data: bytes
    extension: str


def visitor_tag(visitor_id: str) -> str:
    """What the record keeps of a visitor's id: not the id itself, so the database's contents do not
    let anyone act as that visitor."""
    return hashlib.sha256(visitor_id.encode()).hexdigest()[:32] if visitor_id else ""


def id_stamp(seconds: float) -> str:
    """The time part of an id made at `seconds` (since the epoch): ids compare as strings in time
    order, so an age check is a string comparison, with no date parsing per entry."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(seconds)) + f"{int(seconds * 1e6) % 1_000_000:06d}"


def _new_id() -> str:
    return f"{id_stamp(time.time())}-{secrets.token_hex(4)}"


def _row(entry: StoredPrediction, original: bytes) -> tuple[object, ...]:
    """The table's row: the record's fields are its first columns, in order."""
    thumbnail = thumbnail_png(original) if entry.visitor else None
    return (*vars(entry).values(), original, thumbnail)


class PredictionStore:
    def __init__(self, folder: str, keep: int, max_age: float = 24 * 3600) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DATABASE_NAME
        self.keep = keep
        self.max_age = max_age
        # Pruning walks the newest `keep` ids, so it runs once per this many stored entries: the
        # database holds at most keep + prune_every x (number of workers) of them.
        self.prune_every = max(1, keep // 10)
        self._since_prune = 0
        # One connection per thread and process: a connection is not shared across gunicorn's fork.
        self._local = threading.local()

    def new_entry(self, image: CheckedImage, prediction: Prediction, visitor: str = "") -> StoredPrediction:
        """The entry's id and record, without touching the disk (cheap: on the request path)."""
        return StoredPrediction(
            id=_new_id(),
            image_extension=image.extension,
            model=prediction.model,
            version=prediction.version,
            class_id=prediction.class_id,
            confidence=prediction.probabilities[prediction.class_id]
            if 0 <= prediction.class_id < len(prediction.probabilities)
            else max(prediction.probabilities),
            created=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            visitor=visitor_tag(visitor),
        )

    def write(self, uploads: Sequence[tuple[StoredPrediction, bytes]]) -> None:
        """Store the entries, each with its upload and (a visitor's) thumbnail, in one transaction;
        then prune once every `prune_every` entries. Called by one process per web worker (its upload
        writer); raises sqlite3.Error or OSError for a full or read-only disk."""
        rows = [_row(entry, original) for entry, original in uploads]  # before taking the lock
        with self._transaction(create=True) as database:
            database.executemany(_INSERT, rows)
            self._since_prune += len(rows)
            if self._since_prune >= self.prune_every:
                self._since_prune = 0
                self._delete_old(database)

    def prune(self) -> None:
        """Delete the entries beyond `keep` and those older than `max_age` (the writer calls this when
        it starts, and each worker every expiry_interval(), so uploads expire even when no one uploads).
        Then the write-ahead log is copied into the database and emptied: it still holds the pages as
        they were before, and with them the deleted uploads (secure_delete cleared them in the database)."""
        with self._transaction(create=False) as database:
            if database is None:
                return
            self._delete_old(database)
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def repair(self) -> None:
        """Give an existing database file that has no table its table and WAL mode. A writer of 0.3.0
        before 5889f89 made the file in place, and one that stopped midway left it empty or without its
        table: every write then failed with "no such table" and lost its uploads. The writer calls
        this when it starts; a database in order costs one read of its schema."""
        database = self._connection(create=False)
        if database is None or database.execute(_HAS_TABLE).fetchone():
            return
        database.executescript(_SCHEMA)  # waits out other writers (BUSY_SECONDS), as writes do
        log.warning("%s had no table (left by a stopped writer): created it", self.path)
        try:
            database.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:  # a reader holds it now: writes still work, slower
            log.warning("%s stays in rollback-journal mode: %s", self.path, error)

    def recent(self, count: int, visitor: str) -> list[StoredPrediction]:
        """This visitor's latest entries, newest first, none older than max_age."""
        tag = visitor_tag(visitor)
        if not tag:
            return []
        rows = self._read(_RECENT, (tag, self._oldest_kept(), count))
        return [StoredPrediction(*row) for row in rows]

    def picture(self, filename: str, visitor: str) -> StoredPicture | None:
        """An entry's upload or thumbnail by the name the page uses, or None for names this store never
        generates, for pictures of another visitor's entries, and for expired ones."""
        tag = visitor_tag(visitor)
        name = STORED_FILE.match(filename)
        if not tag or name is None:
            return None
        entry_id, extension = name.groups()
        rows = self._read(_PICTURE[extension == THUMBNAIL], (entry_id, tag, self._oldest_kept()))
        if not rows or rows[0][1] is None or extension not in (THUMBNAIL, rows[0][0]):
            return None
        return StoredPicture(data=rows[0][1], extension=rows[0][0])

    def has(self, entry_id: str) -> bool:
        """Whether the entry is stored (the upload queue's flush asks)."""
        return bool(self._read("SELECT 1 FROM predictions WHERE id = ?", (entry_id,)))

    def _oldest_kept(self) -> str:
        """Entries whose id sorts before this are older than max_age."""
        return id_stamp(time.time() - self.max_age)

    def _delete_old(self, database: sqlite3.Connection) -> None:
        database.execute(_DELETE_EXPIRED, (self._oldest_kept(),))
        database.execute(_DELETE_BEYOND_KEPT, (self.keep - 1,))

    def _read(self, query: str, parameters: tuple[object, ...]) -> list[tuple[object, ...]]:
        """The query's rows; none while nothing is stored yet, and none (with a warning) when the
        database cannot be read: a page then lists nothing rather than failing."""
        try:
            database = self._connection(create=False)
            return [] if database is None else database.execute(query, parameters).fetchall()
        except sqlite3.Error as error:
            log.warning("could not read the stored predictions in %s: %s", self.path, error)
            return []

    @contextlib.contextmanager
    def _transaction(self, create: bool) -> Iterator[sqlite3.Connection | None]:
        database = self._connection(create)
        if database is None:
            yield None
            return
        # IMMEDIATE: take the write lock first, so two writers wait in turn instead of failing.
        database.execute("BEGIN IMMEDIATE")
        try:
            yield database
        except BaseException:
            database.execute("ROLLBACK")
            raise
        database.execute("COMMIT")

    def _connection(self, create: bool) -> sqlite3.Connection | None:
        """This thread's connection; None while the database does not exist and `create` is false."""
        local = self._local
        if getattr(local, "pid", None) == os.getpid():
            return local.connection  # type: ignore[no-any-return]
        if not self.path.exists():
            if not create:
                return None
            self._create()
        database = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
        # A commit needs no fsync with synchronous=NORMAL in WAL mode (a power cut may lose the last
        # commits, never the database).
        database.execute("PRAGMA synchronous=NORMAL")
        # Deleted entries are overwritten, not only unlinked from the tree: an expired upload leaves
        # no copy in the database's free pages.
        database.execute("PRAGMA secure_delete=ON")
        local.pid, local.connection = os.getpid(), database
        return database

    def _create(self) -> None:
        """Make the database whole under another name, then link it into place, so whoever finds the
        file finds it in WAL mode (readers never wait for the writers) with its table. Made in place,
        a new file's switch to WAL takes an exclusive lock without waiting out the busy timeout: with
        pages opening the file meanwhile, 4 to 11 of 40 first writes failed with "database is locked"
        and lost their uploads (tests/webapp/test_upload_queue.py). The copy is private to this user
        (mkstemp's 0600), as the uploads in it are."""
        self.folder.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".uploads-", suffix=".sqlite3", dir=self.folder)
        os.close(descriptor)
        try:
            with contextlib.closing(sqlite3.connect(temporary, isolation_level=None)) as database:
                database.execute("PRAGMA journal_mode=WAL")  # kept in the file; its log goes on close
                database.executescript(_SCHEMA)
            with contextlib.suppress(FileExistsError):  # another worker's writer made it first
                os.link(temporary, self.path)
        finally:
            os.unlink(temporary)


def start_expiry_thread(store: PredictionStore) -> threading.Thread:
    """A daemon thread of the worker that deletes expired entries every `expiry_interval(store)`
    seconds, so uploads are gone soon after UPLOADS_MAX_AGE even when no one uploads (the writer
    prunes only as it writes). Started on a worker's first request (any request: HAProxy's health
    checks count)."""

    def expire() -> None:
        while True:
            time.sleep(expiry_interval(store))
            try:
                store.prune()
            except (OSError, sqlite3.Error) as error:
                log.warning("could not delete expired uploads in %s: %s", store.path, error)

    thread = threading.Thread(target=expire, name="upload-expiry", daemon=True)
    thread.start()
    return thread


def expiry_interval(store: PredictionStore) -> float:
    """Seconds between two deletions of expired entries: a quarter of the age limit, 1 s to 10 min."""
    return min(600.0, max(1.0, store.max_age / 4))
