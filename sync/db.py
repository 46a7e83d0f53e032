"""The studio's SQLite index: one file, WAL mode, versioned migrations run at start.

Each thread gets its own connection (SQLite connections must not be shared across threads);
all of them open the same file. The schema version lives in ``PRAGMA user_version``; each
migration runs once, in order, inside a transaction.

>>> index = Index(Path("/tmp/studio.db")); index.migrate()  # doctest: +SKIP
>>> index.db["projects"].count  # doctest: +SKIP
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import sqlite_utils


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT UNIQUE COLLATE NOCASE,
            name TEXT NOT NULL,
            password_hash TEXT,
            guest INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE tokens (
            hash TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        )""")
    db.execute("CREATE INDEX tokens_user ON tokens(user_id)")
    db.execute("""
        CREATE TABLE projects (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            template TEXT NOT NULL,
            path TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            archived INTEGER NOT NULL DEFAULT 0,
            deleted_at TEXT,
            trash_path TEXT,
            created_by TEXT,
            story_text TEXT NOT NULL DEFAULT ''
        )""")
    db.execute("CREATE INDEX projects_updated ON projects(updated_at)")
    db.execute("""
        CREATE TABLE members (
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
            added_at TEXT NOT NULL,
            PRIMARY KEY (project_id, user_id)
        )""")
    db.execute("CREATE INDEX members_user ON members(user_id)")
    db.execute("""
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            actor_id TEXT,
            action TEXT NOT NULL,
            target TEXT,
            ip TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        )""")
    db.execute("CREATE INDEX audit_actor ON audit(actor_id)")
    db.execute("""
        CREATE TABLE activity (
            id INTEGER PRIMARY KEY,
            project_id TEXT NOT NULL,
            time TEXT NOT NULL,
            user_id TEXT,
            user_name TEXT NOT NULL,
            kind TEXT NOT NULL,
            summary TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        )""")
    db.execute("CREATE INDEX activity_project ON activity(project_id, id)")
    # External-content FTS5 table kept in step by triggers (written out rather than through
    # sqlite-utils' enable_fts, whose executescript would commit the migration half-way).
    db.execute("""
        CREATE VIRTUAL TABLE projects_fts USING fts5(
            name, description, story_text, content='projects', content_rowid='rowid',
            tokenize='unicode61 remove_diacritics 2'
        )""")
    db.execute("""
        CREATE TRIGGER projects_ai AFTER INSERT ON projects BEGIN
            INSERT INTO projects_fts(rowid, name, description, story_text)
            VALUES (new.rowid, new.name, new.description, new.story_text);
        END""")
    db.execute("""
        CREATE TRIGGER projects_ad AFTER DELETE ON projects BEGIN
            INSERT INTO projects_fts(projects_fts, rowid, name, description, story_text)
            VALUES ('delete', old.rowid, old.name, old.description, old.story_text);
        END""")
    db.execute("""
        CREATE TRIGGER projects_au AFTER UPDATE ON projects BEGIN
            INSERT INTO projects_fts(projects_fts, rowid, name, description, story_text)
            VALUES ('delete', old.rowid, old.name, old.description, old.story_text);
            INSERT INTO projects_fts(rowid, name, description, story_text)
            VALUES (new.rowid, new.name, new.description, new.story_text);
        END""")


def _v2(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            queue TEXT NOT NULL,
            params TEXT NOT NULL,
            node_id TEXT,
            requester_id TEXT,
            priority INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
            progress REAL NOT NULL DEFAULT 0,
            error TEXT,
            outputs TEXT NOT NULL DEFAULT '[]',
            attempts INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            size_key TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            duration_s REAL
        )""")
    db.execute("CREATE INDEX tasks_waiting ON tasks(state, queue, priority, created_at)")
    db.execute("CREATE INDEX tasks_project ON tasks(project_id, created_at)")
    db.execute("CREATE INDEX tasks_history ON tasks(kind, size_key, state, finished_at)")


def _v3(db: sqlite_utils.Database) -> None:
    # Failures: a running task's worker says it is alive (heartbeat_at) so a watchdog can tell a
    # dead worker from a slow task; a transient failure waits for its next attempt (retry_at).
    db.execute("ALTER TABLE tasks ADD COLUMN heartbeat_at TEXT")
    db.execute("ALTER TABLE tasks ADD COLUMN retry_at TEXT")
    db.execute("ALTER TABLE tasks ADD COLUMN worker TEXT")
    db.execute("CREATE INDEX tasks_running ON tasks(state, heartbeat_at)")
    db.execute("""
        CREATE TABLE webhooks (
            id TEXT PRIMARY KEY,
            project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            secret TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            created_by TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX webhooks_project ON webhooks(project_id)")
    db.execute("""
        CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY,
            webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            status_code INTEGER,
            duration_ms REAL,
            error TEXT,
            ok INTEGER NOT NULL,
            will_retry INTEGER NOT NULL DEFAULT 0,
            time TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id)")


def _v4(db: sqlite_utils.Database) -> None:
    # Several server processes hear of the same event (through Redis): the activity line it makes
    # is written by whichever comes first, keyed by the event's id; the others' inserts are ignored.
    db.execute("ALTER TABLE activity ADD COLUMN event_id TEXT")
    db.execute("CREATE UNIQUE INDEX activity_event ON activity(event_id) WHERE event_id IS NOT NULL")


def _v5(db: sqlite_utils.Database) -> None:
    # The latest low-resolution preview of a running task (PNG), for clients that connect late.
    db.execute("ALTER TABLE tasks ADD COLUMN preview BLOB")
    db.execute("ALTER TABLE tasks ADD COLUMN preview_at TEXT")


def _v6(db: sqlite_utils.Database) -> None:
    # A guest that signs in to an account hands its projects over; the retired guest row stays
    # (without tokens) so history written under it still names it, and erasing the account erases
    # it too. Sample copies are marked so an unopened one is not handed over twice.
    db.execute("ALTER TABLE users ADD COLUMN merged_into TEXT")
    db.execute("CREATE INDEX users_merged_into ON users(merged_into) WHERE merged_into IS NOT NULL")
    db.execute("ALTER TABLE projects ADD COLUMN sample TEXT")


# Everyone on project ``{pid}`` as the listings show them (owners first, then by when they
# joined): a JSON array of {id, name, role}.
_COLLABORATORS_OF = (
    "(SELECT json_group_array(json_object('id', c.user_id, 'name', c.name, 'role', c.role)) FROM ("
    "SELECT mc.user_id, u.name, mc.role FROM members mc JOIN users u ON u.id = mc.user_id "
    "WHERE mc.project_id = {pid} "
    "ORDER BY CASE mc.role WHEN 'owner' THEN 0 WHEN 'editor' THEN 1 ELSE 2 END, mc.added_at, mc.user_id"
    ") c)"
)


def _v7(db: sqlite_utils.Database) -> None:
    # A project's collaborators are kept on its row, as the JSON a listing sends: a gallery page
    # reads them with the row instead of running a subquery per card (a third of a listing's
    # time). Triggers keep them in step with every change to members or to a member's name,
    # whoever makes it (handlers, hand-over, erasure, cascades, a hand edit of the file).
    db.execute("ALTER TABLE projects ADD COLUMN collaborators TEXT NOT NULL DEFAULT '[]'")
    of_member = _COLLABORATORS_OF.format(pid="projects.id")  # (the SQL here is made of constants)
    db.execute(f"UPDATE projects SET collaborators = {of_member}")  # noqa: S608
    refresh = "UPDATE projects SET collaborators = {expr} WHERE id = {pid};"
    for event, pids in (("INSERT", ("new",)), ("DELETE", ("old",)), ("UPDATE", ("old", "new"))):
        body = " ".join(
            refresh.format(expr=_COLLABORATORS_OF.format(pid=f"{row}.project_id"), pid=f"{row}.project_id")
            for row in pids
        )
        db.execute(
            f"CREATE TRIGGER members_collaborators_{event.lower()} AFTER {event} ON members BEGIN {body} END"
        )
    db.execute(
        "CREATE TRIGGER users_collaborators AFTER UPDATE OF name ON users BEGIN "  # noqa: S608
        f"UPDATE projects SET collaborators = {of_member} "
        "WHERE id IN (SELECT project_id FROM members WHERE user_id = new.id); END"
    )
    # The full-text index changes only with the text it holds: saving a project (updated_at) or
    # a change of collaborators no longer rewrites its entry.
    db.execute("DROP TRIGGER projects_au")
    db.execute("""
        CREATE TRIGGER projects_au AFTER UPDATE OF name, description, story_text ON projects BEGIN
            INSERT INTO projects_fts(projects_fts, rowid, name, description, story_text)
            VALUES ('delete', old.rowid, old.name, old.description, old.story_text);
            INSERT INTO projects_fts(rowid, name, description, story_text)
            VALUES (new.rowid, new.name, new.description, new.story_text);
        END""")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]


class Index:
    """The SQLite index at ``path``: thread-local connections and migrations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection, opened on first use."""
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            db = sqlite_utils.Database(conn)
            self._local.db = db
        return db

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> int:
        """Run every migration newer than the file's schema version; return the new version."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as db:
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            if current > len(MIGRATIONS):
                raise RuntimeError(
                    f"The index {self.path} has schema version {current}, newer than this studio "
                    f"knows ({len(MIGRATIONS)}): upgrade the studio or point STUDIO_DATA_DIR elsewhere."
                )
            for version, migration in enumerate(MIGRATIONS[current:], start=current + 1):
                migration(db)
                db.execute(f"PRAGMA user_version = {version}")
        return self.version

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error.

        Use ``db.execute`` inside it: sqlite-utils' table helpers commit on their own. Inside a
        :meth:`batch` it is a savepoint: an error undoes only its own writes, and they are
        committed with the batch. Anywhere else a transaction already open is an error, as
        SQLite makes it, rather than writes that silently wait for someone else's COMMIT.
        """
        db = self.db
        if getattr(self._local, "batch", False):
            db.execute("SAVEPOINT nested")
            try:
                yield db
            except BaseException:
                with suppress(sqlite3.Error):  # gone if SQLite rolled the whole batch back itself
                    db.execute("ROLLBACK TO nested")
                    db.execute("RELEASE nested")
                raise
            db.execute("RELEASE nested")
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction holding several :meth:`transaction` blocks (each a savepoint) for
        :class:`sync.indexwriter.IndexWriter`, which commits it. Rolled back if the block ends
        by an exception; left open otherwise, for the caller's ``COMMIT``."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        self._local.batch = True
        try:
            yield db
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            self._local.batch = False

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None
