"""Glue between the live documents (``sync.rooms``) and the studio's index and accounts."""

from __future__ import annotations

import json
from pathlib import Path

from app.studio import Studio, now_iso
from sync import repo
from sync.materializer import Committed, Materializer
from sync.model import story_text
from sync.rooms import FILESYSTEM, Rooms
from sync.updatelog import SQLiteUpdateLog
from sync.watcher import Watcher

SYSTEM_AUTHORS = {
    FILESYSTEM: repo.Author("filesystem", "filesystem@studio.invalid"),
    "studio": repo.Author("studio", "studio@studio.invalid"),
}


def build_watcher(studio: Studio, rooms: Rooms) -> Watcher:
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

    return Watcher(workspace.projects, rooms, project_id_for, on_invalid)


def build_rooms(studio: Studio) -> Rooms:
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

    materializer = Materializer(authors=authors, on_commit=on_commit)
    updates = SQLiteUpdateLog(studio.settings.data_dir / "sync.db")
    return Rooms(updates, project_root, materializer)
