"""The durable update log: every accepted update, appended before it is broadcast.

A project's document is its latest snapshot plus the updates after it. Rooms depend only on the
:class:`UpdateLog` protocol; ``SQLiteUpdateLog`` is the store the studio runs on and
``MemoryUpdateLog`` the one unit tests use, and both pass one contract suite
(``tests/unit/test_updatelog_contract.py``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pycrdt import Doc

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Entry:
    seq: int
    data: bytes
    user_id: str
    time: float


@dataclass(frozen=True)
class Loaded:
    snapshot: bytes | None
    snapshot_seq: int
    updates: list[Entry]

    def replay(self) -> Doc[Any]:
        """The document these hold: the snapshot, then every later update in order."""
        doc: Doc[Any] = Doc()
        if self.snapshot:
            doc.apply_update(self.snapshot)
        for entry in self.updates:
            doc.apply_update(entry.data)
        return doc

    @property
    def empty(self) -> bool:
        return self.snapshot is None and not self.updates


class UpdateLog(Protocol):
    def append(self, project_id: str, data: bytes, user_id: str) -> int:
        """Store ``data`` durably; return its sequence number (increasing per project)."""
        ...

    def seed(self, project_id: str, data: bytes, user_id: str) -> int | None:
        """Append ``data`` as the project's first update, only if nothing was ever appended for it;
        its sequence number, or None when the project has a log already (another server process
        seeded it a moment before: R1, S1)."""
        ...

    def load(self, project_id: str) -> Loaded:
        """The latest snapshot and every update after it."""
        ...

    def since(self, project_id: str, seq: int) -> list[Entry]:
        """Updates with a sequence number above ``seq`` (those not yet in a snapshot)."""
        ...

    def contributors(self, project_id: str, seq: int) -> list[str]:
        """Who sent each update above ``seq``, in order (without reading the updates themselves)."""
        ...

    def snapshot_seq(self, project_id: str) -> int:
        """The position the latest snapshot covers, 0 if none."""
        ...

    def compact(self, project_id: str, snapshot: bytes, upto_seq: int) -> None:
        """Replace updates up to ``upto_seq`` with ``snapshot`` (the doc state at that point)."""
        ...

    def mark(self, project_id: str, name: str, seq: int) -> None:
        """Remember a position (e.g. the last update the Git repository holds)."""
        ...

    def marker(self, project_id: str, name: str) -> int:
        """A position remembered with :meth:`mark`, 0 if none."""
        ...

    def last_seq(self, project_id: str) -> int: ...


class MemoryUpdateLog:
    """An in-memory log with the same behaviour, for tests (nothing survives the process)."""

    def __init__(self) -> None:
        self._updates: dict[str, list[Entry]] = {}
        self._snapshots: dict[str, tuple[bytes, int]] = {}
        self._marks: dict[tuple[str, str], int] = {}
        self._seq: dict[str, int] = {}

    def append(self, project_id: str, data: bytes, user_id: str) -> int:
        seq = self._seq.get(project_id, 0) + 1
        self._seq[project_id] = seq
        self._updates.setdefault(project_id, []).append(Entry(seq, bytes(data), user_id, time.time()))
        return seq

    def seed(self, project_id: str, data: bytes, user_id: str) -> int | None:
        return None if self._seq.get(project_id) else self.append(project_id, data, user_id)

    def load(self, project_id: str) -> Loaded:
        snap, snap_seq = self._snapshots.get(project_id, (None, 0))
        return Loaded(snap, snap_seq, [e for e in self._updates.get(project_id, []) if e.seq > snap_seq])

    def since(self, project_id: str, seq: int) -> list[Entry]:
        return [e for e in self._updates.get(project_id, []) if e.seq > seq]

    def contributors(self, project_id: str, seq: int) -> list[str]:
        return [e.user_id for e in self.since(project_id, seq)]

    def snapshot_seq(self, project_id: str) -> int:
        return self._snapshots.get(project_id, (b"", 0))[1]

    def compact(self, project_id: str, snapshot: bytes, upto_seq: int) -> None:
        self._snapshots[project_id] = (bytes(snapshot), upto_seq)
        self._updates[project_id] = [e for e in self._updates.get(project_id, []) if e.seq > upto_seq]

    def mark(self, project_id: str, name: str, seq: int) -> None:
        self._marks[(project_id, name)] = seq

    def marker(self, project_id: str, name: str) -> int:
        return self._marks.get((project_id, name), 0)

    def last_seq(self, project_id: str) -> int:
        return self._seq.get(project_id, 0)


class SQLiteUpdateLog:
    """The log in its own SQLite file (WAL): appends never wait behind index writes.

    ``synchronous=NORMAL`` in WAL mode keeps every committed append through a crash of the
    process (``kill -9``); only a power cut can lose the last transactions.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._migrate()

    @property
    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def _migrate(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} has schema {version}, newer than this studio ({SCHEMA_VERSION})")
        if version < 1:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "CREATE TABLE IF NOT EXISTS updates (project_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                "data BLOB NOT NULL, user_id TEXT NOT NULL, time REAL NOT NULL, PRIMARY KEY (project_id, seq))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS snapshots (project_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
                "data BLOB NOT NULL, time REAL NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS marks (project_id TEXT NOT NULL, name TEXT NOT NULL, "
                "seq INTEGER NOT NULL, PRIMARY KEY (project_id, name))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS sequences (project_id TEXT PRIMARY KEY, seq INTEGER NOT NULL)"
            )
            db.execute("PRAGMA user_version = 1")
            db.execute("COMMIT")

    def append(self, project_id: str, data: bytes, user_id: str) -> int:
        seq = self._append(project_id, data, user_id, only_first=False)
        assert seq is not None
        return seq

    def seed(self, project_id: str, data: bytes, user_id: str) -> int | None:
        return self._append(project_id, data, user_id, only_first=True)

    def _append(self, project_id: str, data: bytes, user_id: str, *, only_first: bool) -> int | None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if (
                only_first
                and db.execute("SELECT 1 FROM sequences WHERE project_id = ?", [project_id]).fetchone()
            ):
                db.execute("ROLLBACK")
                return None
            row = db.execute(
                "INSERT INTO sequences(project_id, seq) VALUES (?, 1) "
                "ON CONFLICT(project_id) DO UPDATE SET seq = seq + 1 RETURNING seq",
                [project_id],
            ).fetchone()
            seq = int(row[0])
            db.execute(
                "INSERT INTO updates(project_id, seq, data, user_id, time) VALUES (?, ?, ?, ?, ?)",
                [project_id, seq, bytes(data), user_id, time.time()],
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return seq

    def load(self, project_id: str) -> Loaded:
        row = self._db.execute(
            "SELECT data, seq FROM snapshots WHERE project_id = ?", [project_id]
        ).fetchone()
        snap, snap_seq = (bytes(row[0]), int(row[1])) if row else (None, 0)
        return Loaded(snap, snap_seq, self.since(project_id, snap_seq))

    def since(self, project_id: str, seq: int) -> list[Entry]:
        rows = self._db.execute(
            "SELECT seq, data, user_id, time FROM updates WHERE project_id = ? AND seq > ? ORDER BY seq",
            [project_id, seq],
        ).fetchall()
        return [Entry(int(r[0]), bytes(r[1]), r[2], float(r[3])) for r in rows]

    def contributors(self, project_id: str, seq: int) -> list[str]:
        rows = self._db.execute(
            "SELECT user_id FROM updates WHERE project_id = ? AND seq > ? ORDER BY seq", [project_id, seq]
        ).fetchall()
        return [r[0] for r in rows]

    def snapshot_seq(self, project_id: str) -> int:
        row = self._db.execute("SELECT seq FROM snapshots WHERE project_id = ?", [project_id]).fetchone()
        return int(row[0]) if row else 0

    def compact(self, project_id: str, snapshot: bytes, upto_seq: int) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT INTO snapshots(project_id, seq, data, time) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(project_id) DO UPDATE SET seq = excluded.seq, data = excluded.data, time = excluded.time",
                [project_id, upto_seq, bytes(snapshot), time.time()],
            )
            db.execute("DELETE FROM updates WHERE project_id = ? AND seq <= ?", [project_id, upto_seq])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def mark(self, project_id: str, name: str, seq: int) -> None:
        self._db.execute(
            "INSERT INTO marks(project_id, name, seq) VALUES (?, ?, ?) "
            "ON CONFLICT(project_id, name) DO UPDATE SET seq = excluded.seq",
            [project_id, name, seq],
        )

    def marker(self, project_id: str, name: str) -> int:
        row = self._db.execute(
            "SELECT seq FROM marks WHERE project_id = ? AND name = ?", [project_id, name]
        ).fetchone()
        return int(row[0]) if row else 0

    def last_seq(self, project_id: str) -> int:
        row = self._db.execute("SELECT seq FROM sequences WHERE project_id = ?", [project_id]).fetchone()
        return int(row[0]) if row else 0
