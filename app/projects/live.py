"""Glue between the live documents (``sync.rooms``) and the studio's index and accounts."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from app.projects.access import can_write
from app.studio import Studio, now_iso
from sync import repo
from sync.docmodel import doc_to_state
from sync.materializer import Committed, Materializer, SharedWrites
from sync.model import story_text
from sync.protocol import Close
from sync.room import Access, Conflict, Refusal
from sync.rooms import FILESYSTEM, Rooms
from sync.updatelog import SQLiteUpdateLog
from sync.watcher import Watcher
from sync.workspace import ProjectLocks, scaffold

SYSTEM_AUTHORS = {
    FILESYSTEM: repo.Author("filesystem", "filesystem@studio.invalid"),
    "studio": repo.Author("studio", "studio@studio.invalid"),
}


def build_watcher(
    studio: Studio, rooms: Rooms, on_media: Callable[[str, set[str]], Awaitable[None]] | None = None
) -> Watcher:
    """The watcher merging outside edits of ``Projects/`` into the live documents."""
    index, workspace = studio.index, studio.workspace

    def project_id_for(folder: Path) -> str | None:
        row = index.db.execute(
            "SELECT id FROM projects WHERE path = ? AND deleted_at IS NULL", [workspace.rel(folder)]
        ).fetchone()
        return row[0] if row else None

    def on_invalid(project_id: str, path: str, reason: str) -> None:
        index.db.execute(
            "INSERT INTO activity(project_id, time, user_id, user_name, kind, summary, detail) "
            "VALUES (?, ?, NULL, 'filesystem', 'file.invalid', ?, ?)",
            [project_id, now_iso(), f"{path} was not merged: {reason}",
             json.dumps({"path": path, "reason": reason})],
        )  # fmt: skip

    return Watcher(workspace.projects, rooms, project_id_for, on_invalid, on_media)


def rebuild_repositories(studio: Studio, only: str | None = None) -> dict[str, str]:
    """Write every project's document from the update log into its repository (re-creating a
    repository that was lost) and commit; returns project id → what happened."""
    rooms = build_rooms(studio)
    out: dict[str, str] = {}
    rows = studio.index.db.execute("SELECT id, path, name FROM projects WHERE deleted_at IS NULL").fetchall()
    for project_id, rel, _name in rows:
        if only and project_id != only:
            continue
        loaded = rooms.updates.load(project_id)
        if loaded.empty:
            out[project_id] = "no log (the repository is the source)"
            continue
        state = doc_to_state(loaded.replay())
        root = studio.workspace.path_of(rel)
        if not (root / ".git").exists():
            scaffold(root, state)
            repo.init(root)
            out[project_id] = "repository re-created"
        users = rooms.updates.contributors(project_id, 0) or ["studio"]
        sha = rooms.materializer.write(project_id, root, state, users, note="Rebuild from the update log")
        out[project_id] = (
            f"{out.get(project_id, 'committed')} {sha[:7]}" if sha else out.get(project_id, "up to date")
        )
        rooms.updates.mark(project_id, "git", rooms.updates.last_seq(project_id))
    return out


def build_rooms(studio: Studio, locks: ProjectLocks | None = None) -> Rooms:
    """The process's rooms, persisting to ``STUDIO_DATA_DIR/sync.db`` and the project repositories."""
    index = studio.index

    def authors(user_ids: list[str]) -> dict[str, repo.Author]:
        found = dict(SYSTEM_AUTHORS)
        people = [u for u in user_ids if u not in found]
        if people:
            marks = ",".join("?" * len(people))
            for uid, name, email in index.db.execute(
                f"SELECT id, name, email FROM users WHERE id IN ({marks})",  # noqa: S608
                people,
            ):
                found[uid] = repo.Author(name, email or f"{uid}@guest.studio.invalid")
        return {u: found.get(u, repo.Author("deleted user", "deleted@studio.invalid")) for u in user_ids}

    def on_commit(c: Committed) -> None:
        meta = c.state["meta"]
        first = c.authors[0]
        with index.transaction() as db:
            db.execute(
                "UPDATE projects SET name = ?, description = ?, story_text = ?, updated_at = ? WHERE id = ?",
                [meta["name"], meta.get("description", ""), story_text(c.state), now_iso(), c.project_id],
            )
            db.execute(
                "INSERT INTO activity(project_id, time, user_id, user_name, kind, summary, detail) "
                "VALUES (?, ?, NULL, ?, 'project.committed', ?, ?)",
                [c.project_id, now_iso(), first.name, c.message,
                 json.dumps({"sha": c.sha, "authors": [a.name for a in c.authors]})],
            )  # fmt: skip

    def project_root(project_id: str) -> Path | None:
        row = index.db.execute(
            "SELECT path FROM projects WHERE id = ? AND deleted_at IS NULL", [project_id]
        ).fetchone()
        return studio.workspace.path_of(row[0]) if row else None

    def on_conflict(project_id: str, c: Conflict) -> None:
        names = authors([c.lost_by, c.kept_by])
        where = ".".join(c.path)
        summary = f"{names[c.kept_by].name} replaced {names[c.lost_by].name}'s {where} (was {_short(c.lost)})"
        detail = {"path": c.path, "lost": c.lost, "kept": c.kept, "lost_by": names[c.lost_by].name,
                  "kept_by": names[c.kept_by].name, "restorable": True}  # fmt: skip
        index.db.execute(
            "INSERT INTO activity(project_id, time, user_id, user_name, kind, summary, detail) "
            "VALUES (?, ?, ?, ?, 'conflict', ?, ?)",
            [
                project_id,
                now_iso(),
                c.kept_by,
                names[c.kept_by].name,
                summary,
                json.dumps(detail, default=str),
            ],
        )

    log_path = studio.settings.data_dir / "sync.db"
    rooms = Rooms(SQLiteUpdateLog(log_path), project_root, Materializer(
        authors=authors, on_commit=on_commit, locks=locks or ProjectLocks(), shared=SharedWrites(log_path)
    ), on_conflict=on_conflict)  # fmt: skip
    rooms.access = lambda project_id, sessions: access_now(studio, project_id, sessions)
    return rooms


def access_now(
    studio: Studio, project_id: str, sessions: set[tuple[str, str]]
) -> dict[tuple[str, str], Access]:
    """What each (user id, session) may do in ``project_id`` now, from the index: its sign-in must
    still be valid (not signed out, the account not erased) and its person still a member."""
    db = studio.index.db
    roles = dict(
        db.execute("SELECT user_id, role FROM members WHERE project_id = ?", [project_id]).fetchall()
    )
    hashes = sorted({session for _, session in sessions if session})
    valid: set[str] = set()
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        marks = ",".join("?" * len(chunk))
        valid.update(h for (h,) in db.execute(
            f"SELECT hash FROM tokens WHERE revoked_at IS NULL AND hash IN ({marks})", chunk  # noqa: S608
        ))  # fmt: skip
    out: dict[tuple[str, str], Access] = {}
    for user_id, session in sessions:
        if session and session not in valid:
            out[user_id, session] = Refusal(
                Close.UNAUTHENTICATED, "you signed out (or the sign-in was revoked)"
            )
        elif user_id not in roles:
            out[user_id, session] = Refusal(Close.FORBIDDEN, "you are no longer a member of this project")
        else:
            out[user_id, session] = can_write(roles[user_id])
    return out


def _short(value: object, limit: int = 40) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
