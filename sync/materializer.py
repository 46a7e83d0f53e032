"""The materializer: a project's document written into its Git repository as plain files.

It writes the deterministic JSON files of the state (``sync/model.py``), removes the files of
canvases that no longer exist, and commits with the people whose updates the commit holds:
the one with the most updates as author, the others as ``Co-authored-by:`` trailers. The
message says what changed in words. Nothing is committed when nothing changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sync import repo
from sync.docmodel import describe_changes
from sync.jsonfile import normalize, write_atomic
from sync.model import CANVAS_DIR, State, read_state, state_to_files
from sync.workspace import ProjectLocks


@dataclass(frozen=True)
class Committed:
    project_id: str
    sha: str
    message: str
    authors: list[repo.Author]
    state: State


class SharedWrites:
    """What the materializers of every server process last wrote to each file (sha256 and when),
    kept in ``sync.db``: the file watcher of any process recognises the writes of all of them
    (F1 with several server processes), not its own only.

    >>> shared = SharedWrites(data_dir / "sync.db"); shared.record(path, digest)  # doctest: +SKIP
    >>> shared.last(path)  # doctest: +SKIP
    ('9f86d08…', 1764090000.123)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS materialized (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, "
            "stamp REAL NOT NULL)"
        )

    @property
    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def record(self, path: Path, sha256: str) -> None:
        self._db.execute(
            "INSERT INTO materialized(path, sha256, stamp) VALUES (?, ?, ?) ON CONFLICT(path) "
            "DO UPDATE SET sha256 = excluded.sha256, stamp = excluded.stamp",
            [str(path.resolve()), sha256, time.time()],
        )

    def last(self, path: Path) -> tuple[str, float] | None:
        row = self._db.execute(
            "SELECT sha256, stamp FROM materialized WHERE path = ?", [str(path.resolve())]
        ).fetchone()
        return (str(row[0]), float(row[1])) if row else None


@contextlib.contextmanager
def repository_lock(root: Path) -> Iterator[None]:
    """Held while a commit is made, so server processes sharing the workspace commit one at a
    time (the in-process :class:`ProjectLocks` cannot see the others)."""
    if not (root / ".git").is_dir():
        yield
        return
    with open(root / ".git" / "studio-commit.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class Materializer:
    """``authors(user_ids)`` names people for commits; ``on_commit`` hears of each commit."""

    authors: Callable[[list[str]], dict[str, repo.Author]]
    on_commit: Callable[[Committed], None] = lambda committed: None
    # Hashes of the files this process wrote, so the file watcher can ignore its own writes.
    written: dict[Path, str] = field(default_factory=dict)
    # Shared with everything else that writes a project's repository (trash, bundles).
    locks: ProjectLocks = field(default_factory=ProjectLocks)
    # The writes of every server process on this workspace, when several share it.
    shared: SharedWrites | None = None

    def write(
        self, project_id: str, root: Path, state: State, user_ids: list[str], note: str | None = None
    ) -> str | None:
        """Write ``state`` into ``root`` and commit it; return the sha, or None if nothing changed."""
        with self.locks(project_id), repository_lock(root):
            # Compared with what HEAD holds (not the working tree): edits someone made to the files
            # by hand are in the doc by now and get committed here, attributed to "filesystem".
            old = _state_at_head(root)
            files = state_to_files(state)
            if old is not None and normalize(old) == normalize(state) and not _files_differ(root, files):
                return None
            for rel, data in files.items():
                path = root / rel
                if not path.exists() or path.read_bytes() != data:
                    digest = hashlib.sha256(data).hexdigest()
                    self.written[path] = digest
                    if self.shared is not None:
                        self.shared.record(path, digest)
                    write_atomic(path, data)
            canvas_dir = root / CANVAS_DIR
            if canvas_dir.is_dir():
                for path in canvas_dir.glob("*.json"):
                    if f"{CANVAS_DIR}/{path.name}" not in files:
                        path.unlink()
            counts = Counter(user_ids)
            people = self.authors(list(counts))
            ordered = [people[u] for u, _ in counts.most_common() if u in people]
            if not ordered:
                ordered = [repo.Author("studio", "studio@studio.invalid")]
            message = describe_changes(old, state) if old else "Rewrite project files from the live document"
            if note:
                message = f"{note}: {message}" if message else note
            sha = repo.commit_all(
                root, message or "Update project", ordered[0], _unique(ordered[1:], ordered[0])
            )
            if sha is None:
                return None
        self.on_commit(Committed(project_id, sha, message, ordered, state))
        return sha


def _state_at_head(root: Path) -> State | None:
    """What the last commit holds; None when there is no commit (or it is unreadable)."""
    try:
        return read_state(repo.reader_at(root, "HEAD"))
    except (KeyError, ValueError, OSError):
        return None


def _files_differ(root: Path, files: dict[str, bytes]) -> bool:
    for rel, data in files.items():
        path = root / rel
        if not path.is_file() or path.read_bytes() != data:
            return True
    return False


def _unique(authors: list[repo.Author], first: repo.Author) -> list[repo.Author]:
    seen = {first}
    out = []
    for a in authors:
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out
