"""Uploads are stored off the request path: a bounded queue that never makes an answer wait, and that
is written out completely when the worker stops gracefully."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.webapp.webtest_support import Digit, gunicorn_env, gunicorn_server, png_bytes, require_digits
from tfserving_web.model_server import Prediction
from tfserving_web.uploads.images import CheckedImage, check_image
from tfserving_web.uploads.queue import UploadQueue
from tfserving_web.uploads.store import PredictionStore

PREDICTION = Prediction(model="digits", version=1, class_id=3, probabilities=[0.1] * 10, latency_ms=1.0)
# The load test's senders stop at the first failure, and after this many requests at the latest.
MAX_REQUESTS_PER_SENDER = 3000


def stalled_writer(gate: Path) -> list[str]:
    """The real upload writer, but one that reads nothing until `gate` exists (a stalled disk)."""
    code = (
        "import os, runpy, sys, time\n"
        f"while not os.path.exists({str(gate)!r}):\n"
        "    time.sleep(0.02)\n"
        "sys.argv[0] = 'upload_writer'\n"
        "runpy.run_module('tfserving_web.uploads.writer', run_name='__main__')\n"
    )
    return [sys.executable, "-c", code]


def image_of(side: int) -> CheckedImage:
    return check_image(png_bytes(Image.effect_noise((side, side), 80)), max_pixels=side * side)


def stored(store: PredictionStore) -> list[tuple[str, bool]]:
    """(id, has a thumbnail) of every stored entry, read from the database itself."""
    if not store.path.exists():
        return []
    with contextlib.closing(sqlite3.connect(store.path)) as database:
        rows = database.execute("SELECT id, thumbnail IS NOT NULL FROM predictions ORDER BY id")
        return [(entry_id, bool(thumbnail)) for entry_id, thumbnail in rows]


def test_a_full_queue_never_makes_the_answer_wait(tmp_path: Path) -> None:
    """The writer reads nothing: the pipe fills (1 MiB), then the queue (4); then uploads are refused
    at once instead of waiting. Everything accepted is written once the writer reads again."""
    store = PredictionStore(str(tmp_path / "uploads"), keep=1000)
    gate = tmp_path / "gate"
    writer = [*stalled_writer(gate), str(store.folder), "1000", "86400"]
    uploads = UploadQueue(store, size=4, writer_command=writer)
    big = image_of(400)  # about 200 KB: a handful fill the pipe
    accepted, slowest = 0, 0.0
    for _ in range(40):
        started = time.monotonic()
        accepted += uploads.submit(big, PREDICTION) is not None
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.005)
    assert slowest < 0.1, f"a submit waited {slowest:.2f} s"
    assert uploads.dropped == 40 - accepted > 0
    gate.touch()
    uploads.close()
    assert len(stored(store)) == accepted


def test_close_writes_everything_still_queued(tmp_path: Path) -> None:
    store = PredictionStore(str(tmp_path / "uploads"), keep=1000)
    uploads = UploadQueue(store, size=256)
    image = image_of(28)
    # A page visitor's uploads (those have thumbnails; the JSON API's have none).
    entries = [uploads.submit(image, PREDICTION, visitor="0" * 32) for _ in range(200)]
    uploads.close()  # at once: most are still queued or in the pipe
    assert stored(store) == sorted((entry.id, True) for entry in entries)
    assert uploads.submit(image, PREDICTION) is None  # a closed queue takes nothing more


def test_flush_waits_for_what_was_submitted(tmp_path: Path) -> None:
    store = PredictionStore(str(tmp_path / "uploads"), keep=1000)
    uploads = UploadQueue(store, size=256)
    try:
        for _ in range(10):
            uploads.submit(image_of(28), PREDICTION)
        assert uploads.flush(timeout=20)
        assert len(stored(store)) == 10
    finally:
        uploads.close()


def busy_readers(parent: Path, stop: Path, count: int) -> list[subprocess.Popen[bytes]]:
    """Processes that read the store in folder 000 under `parent`, then 001 once it exists, and so on,
    as fast as they can, as a page does (its list, a flush's check), until `stop` exists: each opens
    the database the moment it appears."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tfserving_web.uploads.store import PredictionStore\n"
        "parent, stop, number = Path(sys.argv[1]), Path(sys.argv[2]), 0\n"
        "store = PredictionStore(str(parent / '000'), keep=10)\n"
        "while not stop.exists():\n"
        "    if (parent / f'{number + 1:03d}').exists():\n"
        "        number += 1\n"
        "        store = PredictionStore(str(parent / f'{number:03d}'), keep=10)\n"
        "    store.recent(5, '0' * 32)\n"
        "    store.has('none')\n"
    )
    return [subprocess.Popen([sys.executable, "-c", code, str(parent), str(stop)]) for _ in range(count)]


def test_the_first_write_stores_the_upload_while_others_open_the_database(tmp_path: Path) -> None:
    """The first write creates the database; pages and other workers' writers may open it meanwhile.
    Created in place, 4 to 11 of these 40 first writes failed ("database is locked", 4 runs), and each
    lost its upload: a make test run lost a visitor's first upload that way."""
    parent, stop = tmp_path / "stores", tmp_path / "stop"
    parent.mkdir()
    readers = busy_readers(parent, stop, count=2)
    image = image_of(28)
    failures, trials = [], 40
    try:
        for trial in range(trials):
            store = PredictionStore(str(parent / f"{trial:03d}"), keep=10)
            store.folder.mkdir()  # the readers turn to it and wait for the database to appear
            time.sleep(0.02)
            entry = store.new_entry(image, PREDICTION, visitor="0" * 32)
            try:
                store.write([(entry, image.original)])
            except sqlite3.Error as error:
                failures.append(f"trial {trial}: {error}")
                continue
            assert stored(store) == [(entry.id, True)]
            assert sorted(
                path.name for path in store.folder.iterdir() if not path.name.endswith(("-wal", "-shm"))
            ) == [store.path.name]
    finally:
        stop.touch()
        for reader in readers:
            reader.wait(timeout=30)
    assert not failures, f"{len(failures)} of {trials} first writes failed: {failures[:3]}"
    assert all(reader.returncode == 0 for reader in readers)


def left_without_table(path: Path, wal: bool) -> None:
    """A database file as a writer of 0.3.0 before 5889f89 left it when it stopped while creating it:
    empty (stopped before any write), or in WAL mode with no table yet."""
    path.parent.mkdir(parents=True)
    path.touch()
    if wal:
        with contextlib.closing(sqlite3.connect(path)) as database:
            database.execute("PRAGMA journal_mode=WAL")


@pytest.mark.parametrize("wal", [False, True], ids=["empty-file", "wal-without-table"])
def test_the_writer_repairs_a_database_left_without_its_table(tmp_path: Path, wal: bool) -> None:
    """Every write to such a file failed with "no such table", and lost its uploads, for as long as
    the file stayed; the writer now gives it its table (and WAL mode) when it starts."""
    store = PredictionStore(str(tmp_path / "uploads"), keep=10)
    left_without_table(store.path, wal)
    uploads = UploadQueue(store, size=4)
    entry = uploads.submit(image_of(28), PREDICTION, visitor="0" * 32)
    uploads.close()
    assert entry is not None
    assert stored(store) == [(entry.id, True)]
    with contextlib.closing(sqlite3.connect(store.path)) as database:
        assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.slow
def test_graceful_stop_under_load_loses_no_answered_upload(
    tfserving, digits: list[Digit], tmp_path: Path
) -> None:
    """gunicorn SIGTERM (systemctl stop) while 6 clients send predictions: every prediction answered
    200 has its upload stored once the workers have exited."""
    require_digits(tfserving)
    folder = tmp_path / "uploads"
    env = gunicorn_env(
        tfserving.rest_url, tmp_path, TFWEB_UPLOAD_FOLDER=str(folder), TFWEB_UPLOADS_KEPT="100000"
    )
    answered = [0] * 6
    failed_after_stop: list[str] = []

    def keep_sending(number: int, url: str) -> None:
        session = requests.Session()
        for count in range(MAX_REQUESTS_PER_SENDER):
            png = digits[count % len(digits)].png
            try:
                response = session.post(f"{url}/api/predict", files={"image": ("d.png", png)}, timeout=30)
            except requests.RequestException as error:
                failed_after_stop.append(repr(error))
                return
            if response.status_code != 200:
                failed_after_stop.append(f"{response.status_code} {response.text[:200]}")
                return
            answered[number] += 1

    log = tmp_path / "gunicorn.log"
    with gunicorn_server(env, log, workers=2) as server:
        senders = [threading.Thread(target=keep_sending, args=(n, server.url)) for n in range(6)]
        for sender in senders:
            sender.start()
        time.sleep(2.0)
        os.kill(server.pid, signal.SIGTERM)
        server.process.wait(timeout=60)
        for sender in senders:
            sender.join(timeout=60)
    stored_count = len(stored(PredictionStore(str(folder), keep=100000)))
    print(f"\nSIGTERM under load: {sum(answered)} answered 200, {stored_count} stored")
    assert sum(answered) > 50
    assert stored_count == sum(answered), log.read_text()[-3000:]
    assert "not stored" not in log.read_text()
