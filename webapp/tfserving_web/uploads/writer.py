"""The process that stores one web worker's uploads:
`python -m tfserving_web.uploads.writer FOLDER KEEP MAX_AGE`.

Started by the worker's UploadQueue, it reads batches of uploads from its standard input
(queue.frame: a 4-byte length and a pickle of a list of (record, upload bytes), sent only by that
worker) and stores each batch with the PredictionStore in one transaction, in the order received. It
ends when its input ends, after storing everything received: the worker closes it when it stops, or
the kernel does when the worker dies. Stop signals are ignored for that reason, so a stop never cuts a
write short.

A process, not a thread of the worker: making thumbnails and writing need the GIL, and a thread
would take it from the requests (measured with files: it starved while requests ran and made them wait).
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys

from tfserving_web.uploads import legacy_files
from tfserving_web.uploads.queue import read_frames
from tfserving_web.uploads.store import PredictionStore

log = logging.getLogger("tfserving_web.uploads.writer")
# Storing yields the cores to answering: with the writer at niceness 10, p90/p95 of one client
# through the front end went from 5.1/6.5 ms to 3.4/4.8 ms (3.0/3.9 without storing at all), p50 alike.
# Under a saturated machine the writer then falls behind first; the pipe (1 MiB) and the queue hold
# some seconds of uploads, beyond which new ones are not stored, with a warning.
NICENESS = 10


def main(argv: list[str] | None = None) -> int:
    folder, keep, max_age = (argv if argv is not None else sys.argv[1:])[:3]
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    os.nice(NICENESS)
    logging.basicConfig(format="tfserving-web upload writer: %(message)s")
    store = PredictionStore(folder, keep=int(keep), max_age=float(max_age))
    try:
        store.repair()
        legacy_files.move_into(store)
        store.prune()  # what expired while this worker's writer was not running
    except (OSError, sqlite3.Error) as error:
        log.warning("could not prepare %s at start (repair, files of 0.2, prune): %s", store.path, error)
    for uploads in read_frames(sys.stdin.buffer):
        try:
            store.write(uploads)
        except (OSError, sqlite3.Error) as error:
            # A full or read-only disk: the users already have their answers; say it in the log.
            log.warning("could not store %d upload(s) in %s: %s", len(uploads), store.path, error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
