"""Stores uploads off the request path: a bounded queue per worker process, and a thread that hands
what it holds, in batches, to the worker's upload writer process (`writer`), which makes the
thumbnails and stores each batch in one transaction.

The answer never waits for the disk: `submit` only puts the upload in the queue, and when the queue is
full (a disk far slower than the requests) that upload is not stored and a warning is logged. A
graceful stop loses nothing that was queued: `close` hands over everything still queued, closes the
writer's input and waits for the writer to finish. It runs at the worker's normal exit (gunicorn's
SIGTERM, HUP and max_requests restarts all end a worker with a normal interpreter exit, after its
in-flight requests).

The thread only moves bytes to a pipe, a few system calls per batch (see BATCH_SECONDS), so it needs
the worker's GIL seldom; the writing itself happens in the other process (see writer for why).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from tfserving_web.model_server import Prediction
from tfserving_web.uploads.images import CheckedImage
from tfserving_web.uploads.store import PredictionStore, StoredPrediction

log = logging.getLogger(__name__)

# How long a stopping worker waits for its uploads to be written (within gunicorn's graceful timeout).
DRAIN_SECONDS = 20.0
# A larger pipe lets a burst of uploads through without the handing thread waiting on the writer.
PIPE_BYTES = 1 << 20
FLUSH_POLL_SECONDS = 0.005
# Uploads are handed to the writer in batches at most this often. Waking the writer for each upload
# cost 0.7-1.4 ms of latency per request on a 2-core machine (measured; the writing itself is 0.35 ms
# of CPU); a batch costs one wakeup, and a page waits this much longer for its upload to be listed.
BATCH_SECONDS = 0.05
_HEADER = struct.Struct(">I")


Upload = tuple[StoredPrediction, bytes]  # the record, and the upload's bytes


def frame(uploads: list[Upload]) -> bytes:
    """A batch of uploads as the writer reads it: a 4-byte length, then a pickle of the list. The
    pipe is private to the worker and its writer, so pickle is safe here."""
    payload = pickle.dumps(uploads, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def read_frames(stream: BinaryIO) -> Iterator[list[Upload]]:
    """The batch in each complete frame, until the stream ends."""
    while len(header := stream.read(_HEADER.size)) == _HEADER.size:
        yield pickle.loads(stream.read(_HEADER.unpack(header)[0]))


class UploadQueue:
    """Built per worker process (through PerProcess); its thread and writer start with the first upload."""

    def __init__(
        self, store: PredictionStore, size: int, writer_command: Sequence[str] | None = None
    ) -> None:
        self.store = store
        self.writer_command = list(writer_command or self._writer_command(store))
        self._queue: queue.Queue[Upload | None] = queue.Queue(maxsize=size)
        self._lock = threading.Lock()
        self.dropped = 0
        self._last: StoredPrediction | None = None
        self._thread: threading.Thread | None = None
        self._writer: subprocess.Popen[bytes] | None = None
        self._closed = False

    @staticmethod
    def _writer_command(store: PredictionStore) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tfserving_web.uploads.writer",
            str(store.folder),
            str(store.keep),
            repr(store.max_age),
        ]

    def submit(
        self, image: CheckedImage, prediction: Prediction, visitor: str = ""
    ) -> StoredPrediction | None:
        """Queue the upload for storing, without waiting; None when it will not be stored."""
        entry = self.store.new_entry(image, prediction, visitor)
        with self._lock:
            if self._closed:
                log.warning("upload %s not stored: the worker is stopping", entry.id)
                return None
            if self._thread is None:
                self._start()
            try:
                self._queue.put_nowait((entry, image.original))
            except queue.Full:
                self.dropped += 1
                if _is_power_of_ten(self.dropped):  # a flood of warnings would not help
                    log.warning(
                        "upload queue full (%d waiting): %d upload(s) not stored so far",
                        self._queue.maxsize,
                        self.dropped,
                    )
                return None
            self._last = entry
        return entry

    def flush(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until the uploads submitted so far are stored, so a page drawn
        now lists them. The writer stores in order, so the last one stored says all are."""
        last = self._last
        if last is None:
            return True
        deadline = time.monotonic() + timeout
        while not self.store.has(last.id):
            if time.monotonic() > deadline:
                return False
            time.sleep(FLUSH_POLL_SECONDS)
        return True

    def close(self, timeout: float = DRAIN_SECONDS) -> None:
        """Hand over everything queued, then wait for the writer to store it. Idempotent; runs at the
        process's exit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        atexit.unregister(self.close)
        if thread is None:
            return
        with contextlib.suppress(queue.Full):  # then the join below times out too, and says so
            self._queue.put(None, timeout=timeout)  # after everything already queued
        thread.join(timeout)
        if thread.is_alive():
            log.error("uploads not stored: not handed to the writer within %g s of the stop", timeout)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._hand_over, name="upload-queue", daemon=True)
        self._thread.start()
        # Daemon, so a stuck writer cannot hold the process forever; the normal exit drains it first.
        atexit.register(self.close)

    def _start_writer(self) -> subprocess.Popen[bytes]:
        writer = subprocess.Popen(self.writer_command, stdin=subprocess.PIPE, bufsize=0)
        assert writer.stdin is not None
        with contextlib.suppress(OSError):  # a smaller pipe only means waiting on the writer sooner
            fcntl.fcntl(writer.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        return writer

    def _hand_over(self) -> None:
        """The thread: everything queued, as one batch, to the writer; at the sentinel, end the writer."""
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            if batch[0] is not None:
                time.sleep(BATCH_SECONDS)  # let more uploads come: one wakeup of the writer for all
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            stopping = batch[-1] is None
            uploads = [item for item in batch if item is not None]
            if uploads:
                self._send(frame(uploads), len(uploads))
        self._stop_writer()

    def _send(self, data: bytes, count: int) -> None:
        for attempt in (1, 2):
            if self._writer is None or self._writer.poll() is not None:
                self._writer = self._start_writer()
            try:
                _write_all(self._writer.stdin.fileno(), data)  # type: ignore[union-attr]
                return
            except OSError as error:
                log.error(
                    "upload writer failed (%s); attempt %d of 2 for %d upload(s)", error, attempt, count
                )
                self._writer.kill()
                self._writer.wait()
                self._writer = None
        log.error("%d upload(s) not stored: the upload writer keeps failing", count)

    def _stop_writer(self) -> None:
        if self._writer is None:
            return
        self._writer.stdin.close()  # type: ignore[union-attr]
        try:
            self._writer.wait(timeout=DRAIN_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("the upload writer did not finish within %g s of the stop", DRAIN_SECONDS)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _is_power_of_ten(number: int) -> bool:
    while number % 10 == 0 and number > 1:
        number //= 10
    return number == 1
