"""WAL checkpoints in a thread of their own.

SQLite copies the write-ahead log back into the database file (a checkpoint) from whichever
connection commits when the log passes 1,000 pages, and a checkpoint ends with two ``fsync``
calls. On the server that connection is usually the event loop's: a burst of new projects
checkpoints every hundred or so, and each time every request in flight waited, up to 60 ms on
these machines' disks while the builders' files were being flushed (strace, 230 creations/s).

A :class:`Checkpointer` turns automatic checkpoints off for the connections that asked for it
and runs them itself, every ``interval_s``, on its own connection (the sqlite3 module lets go of
the GIL while SQLite works). ``PASSIVE`` checkpoints never wait for readers or writers; when the
log has nonetheless grown past ``truncate_over`` bytes (readers held it all along), a
``TRUNCATE`` checkpoint waits (a tenth of a second at most) for a moment without readers and
empties it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("sync.walcheck")


class Checkpointer:
    """Checkpoints the WAL of the SQLite file at ``path`` in a background thread."""

    def __init__(self, path: Path, interval_s: float = 0.5, truncate_over: int = 64 << 20) -> None:
        self.path = path
        self.interval_s = interval_s
        self.truncate_over = truncate_over
        self.done = 0  # checkpoints run (for tests and curiosity)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed = False

    def start(self) -> Checkpointer:
        self._thread = threading.Thread(target=self._run, name=f"checkpoint {self.path.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread after one last checkpoint."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            # A TRUNCATE checkpoint holds new writers back while it waits for readers to leave:
            # it gives up after a tenth of a second and tries again next time.
            conn.execute("PRAGMA busy_timeout=100")
            while not self._stop.wait(self.interval_s):
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() and wal.stat().st_size > self.truncate_over:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            self.done += 1
            self._failed = False
        except (sqlite3.Error, OSError) as exc:
            if not self._failed:  # once per run of failures, not twice a second
                log.warning("wal_checkpoint_failed file=%s error=%s", self.path, exc)
            self._failed = True


def take_over(path: Path, conn: sqlite3.Connection | None, interval_s: float) -> Checkpointer:
    """Turn automatic checkpoints off on ``conn`` (the calling thread's connection, if it has
    one yet) and start a :class:`Checkpointer` for ``path``."""
    if conn is not None:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    return Checkpointer(path, interval_s).start()
