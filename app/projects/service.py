"""Project operations: create from a template or sample, list and search, change, trash."""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.accounts.service import User
from app.logs import get_logger
from app.problems import Problem
from app.projects.access import LISTED_COLUMNS, RANK, ROLES, project_for, row_to_project
from app.studio import Studio, now_iso
from sync import repo
from sync.builders import Builders
from sync.indexwriter import IndexWriter
from sync.model import (
    State,
    apply_sample,
    apply_template,
    empty_state,
    files_to_state,
    story_text,
)
from sync.naming import InvalidName, clean_name
from sync.readcache import ReadCache
from sync.templates import UnknownTemplate, all_samples, get_template
from sync.workspace import ProjectLocks

log = get_logger("app.projects")
CLI_AUTHOR = repo.Author("Studio CLI", "cli@studio.invalid")
SORTS = {"name": "p.name COLLATE NOCASE", "updated": "p.updated_at", "created": "p.created_at"}
MAX_DESCRIPTION = 5000


@dataclass(frozen=True)
class _Plan:
    """A project about to be created: what :meth:`Projects._plan` checked and prepared."""

    pid: str
    template: str
    user: User | None
    state: State
    author: repo.Author
    message: str
    register: Callable[[str], None]


class Projects:
    """Everything a person does to projects, checked against their role."""

    def __init__(self, studio: Studio, locks: ProjectLocks) -> None:
        self.studio = studio
        self.index = studio.index
        self.workspace = studio.workspace
        self.locks = locks
        self.reads = ReadCache(self.index)

    # -- create -----------------------------------------------------------------------------------

    def create(
        self,
        user: User | None,
        name: object,
        template: str = "blank",
        project_id: str | None = None,
        description: str = "",
        sample: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Create a project owned by ``user``; returns (project, created). An existing ``project_id``
        of the same name owned by ``user`` is returned again (offline clients retry). With no ``user``
        (the CLI without ``--owner``) the project has no members until an owner is added."""
        plan = self._plan(user, name, template, project_id, description, sample)
        if isinstance(plan, dict):
            return plan, False
        self.workspace.create_project(plan.state, plan.author, plan.message, plan.register)
        return self._created(plan), True

    async def create_async(
        self,
        builders: Builders,
        writer: IndexWriter,
        user: User,
        name: object,
        template: str,
        project_id: str | None,
        description: str,
    ) -> tuple[dict[str, Any], bool]:
        """:meth:`create` for the event loop: the repository is built by ``builders`` (a thread,
        or a builder process when several creations are in flight), then moved into place and
        registered by ``writer``, with the other creations of a burst in one commit; the checks
        run here."""
        plan = self._plan(user, name, template, project_id, description, None)
        if isinstance(plan, dict):
            return plan, False
        stage = await builders.build(plan.state, plan.author, plan.message)
        try:
            await writer.run(
                lambda: self.workspace.place_built(stage, plan.state, plan.register),
                undo=self.workspace.discard,
            )
        except sqlite3.IntegrityError:
            # Another creation with this id got in first while this one was being built (an
            # offline client sending its retry twice): the same project by the same person is
            # returned as it is, anything else is the 409 the checks give.
            again = self._existing(user, plan.pid, plan.state["meta"]["name"])
            if again is not None:
                return again, False
            raise
        return self._created(plan), True

    def _plan(
        self,
        user: User | None,
        name: object,
        template: str,
        project_id: str | None,
        description: str,
        sample: dict[str, Any] | None,
    ) -> _Plan | dict[str, Any]:
        """Check what is asked and make the new project's state; an existing project of the same
        id, name and owner (an offline client retrying) is returned as it is."""
        try:
            clean = clean_name(name)
        except InvalidName as exc:
            raise Problem(
                422, str(exc), slug="invalid-name", errors=[{"field": "name", "message": str(exc)}]
            ) from None
        try:
            tmpl = get_template(template)
        except UnknownTemplate as exc:
            raise Problem(
                422, str(exc), slug="unknown-template", errors=[{"field": "template", "message": str(exc)}]
            ) from None
        if len(description) > MAX_DESCRIPTION:
            raise Problem(422, f"The description is longer than {MAX_DESCRIPTION} characters.")
        if project_id is not None:  # a client's own id (an offline creation): it may be a retry
            pid = _parse_uuid(project_id)
            existing = self._existing(user, pid, clean)
            if existing is not None:
                return existing
        else:  # a new random id is taken by nothing (were it, the insert would fail, not overwrite)
            pid = str(uuid.uuid4())
        created = now_iso()
        state = apply_template(
            empty_state(uuid=pid, name=clean, template=tmpl["id"], created=created, description=description),
            tmpl,
        )
        if sample is not None:
            apply_sample(state, sample)
        author = repo.Author(user.name, user.commit_email) if user else CLI_AUTHOR
        message = f"Create project {clean} from the {tmpl['name']} template"

        def register(rel: str) -> None:
            with self.index.transaction() as db:
                db.execute(
                    "INSERT INTO projects(id, name, description, template, path, created_at, updated_at, "
                    "archived, created_by, story_text, sample) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                    [
                        pid,
                        clean,
                        description,
                        tmpl["id"],
                        rel,
                        created,
                        created,
                        user and user.id,
                        story_text(state),
                        sample and str(sample.get("id") or clean),
                    ],
                )
                if user:
                    db.execute(
                        "INSERT INTO members(project_id, user_id, role, added_at) VALUES (?, ?, 'owner', ?)",
                        [pid, user.id, created],
                    )
                _activity(db, pid, user, "project.created", message)

        return _Plan(pid, tmpl["id"], user, state, author, message, register)

    def _existing(self, user: User | None, pid: str, clean: str) -> dict[str, Any] | None:
        """None while no project has id ``pid``; the project, when it is the one ``user`` asks
        for again (same name, a member: an offline client retrying); otherwise a 409."""
        existing = self.index.db.execute("SELECT name FROM projects WHERE id = ?", [pid]).fetchone()
        if existing is None:
            return None
        mine = (
            user
            and self.index.db.execute(
                "SELECT role FROM members WHERE project_id = ? AND user_id = ?", [pid, user.id]
            ).fetchone()
        )
        if user and mine and existing[0] == clean:
            return self.get(user, pid)
        raise Problem(
            409, f"A project with id {pid} exists already; create it with a new id.", slug="id-taken"
        )

    def _created(self, plan: _Plan) -> dict[str, Any]:
        log.info("project_created", project_id=plan.pid, template=plan.template)
        if plan.user is None:
            row = self.index.db.execute(
                f"SELECT {LISTED_COLUMNS} FROM projects p LEFT JOIN members m "  # noqa: S608
                "ON 0 WHERE p.id = ?",
                [plan.pid],
            ).fetchone()
            return row_to_project(row)
        return self.get(plan.user, plan.pid)

    def seed_samples(self, user: User) -> list[dict[str, Any]]:
        """Give ``user`` their own copy of every sample project."""
        return [
            self.create(user, s["name"], s["template"], description=s.get("description", ""), sample=s)[0]
            for s in all_samples()
        ]

    # -- read -------------------------------------------------------------------------------------

    def get(self, user: User, project_id: str) -> dict[str, Any]:
        return project_for(self.index, user, project_id, listed=True)[0]

    def get_json(self, user: User, project_id: str) -> bytes:
        """:meth:`get` as JSON, from the read cache while the index is unchanged."""
        return self.reads.answer(("get", user.id, project_id), lambda: self.get(user, project_id))

    def search_json(self, user: User, **filters: Any) -> bytes:
        """:meth:`search` (with its keyword arguments) as JSON, from the read cache while the
        index is unchanged."""
        key = ("search", user.id, *sorted(filters.items()))
        return self.reads.answer(key, lambda: self.search(user, **filters))

    def search(
        self,
        user: User,
        q: str = "",
        template: str | None = None,
        archived: str | None = None,
        updated_since: str | None = None,
        sort: str = "-updated",
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        where = ["m.user_id = ?", "p.deleted_at IS NULL"]
        args: list[Any] = [user.id]
        join = ""
        match = _fts_query(q)
        if match:
            join = "JOIN projects_fts f ON f.rowid = p.rowid"
            where.append("projects_fts MATCH ?")
            args.append(match)
        if template:
            where.append("p.template = ?")
            args.append(template)
        if archived in (None, "", "false", "0"):
            where.append("p.archived = 0")
        elif archived in ("true", "1"):
            where.append("p.archived = 1")
        elif archived != "all":
            raise Problem(
                422,
                "archived must be true, false or all.",
                errors=[{"field": "archived", "message": "true|false|all"}],
            )
        if updated_since:
            where.append("p.updated_at >= ?")
            args.append(_parse_time(updated_since, "updated_since"))
        key = sort.removeprefix("-")
        if key not in SORTS:
            raise Problem(
                422,
                f"sort must be one of {', '.join(SORTS)} (prefix '-' for descending).",
                errors=[{"field": "sort", "message": "unknown sort"}],
            )
        order = f"{SORTS[key]} {'DESC' if sort.startswith('-') else 'ASC'}, p.id"
        base = f"FROM projects p JOIN members m ON m.project_id = p.id {join} WHERE {' AND '.join(where)}"
        db = self.index.db
        rows = db.execute(
            f"SELECT {LISTED_COLUMNS} {base} ORDER BY {order} LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        # A page that is not full tells the total without a second query.
        if len(rows) < limit and (rows or offset == 0):
            total = offset + len(rows)
        else:
            total = db.execute(f"SELECT COUNT(*) {base}", args).fetchone()[0]
        return {"items": [row_to_project(r) for r in rows], "total": total}

    def root(self, rel: str) -> Path:
        return self.workspace.path_of(rel)

    def state(self, user: User, project_id: str) -> State:
        _, rel = project_for(self.index, user, project_id)
        return files_to_state(self.root(rel))

    # -- change -----------------------------------------------------------------------------------

    def meta_changes(self, user: User, project_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Check a rename / description edit (role, validity); return the meta fields that change.

        The change itself is made on the live document (``rooms``), so people editing the project
        at the same time see it and the next commit does not undo it."""
        project, _ = project_for(self.index, user, project_id, "editor")
        meta: dict[str, Any] = {}
        if changes.get("name") is not None:
            try:
                name = clean_name(changes["name"])
            except InvalidName as exc:
                raise Problem(
                    422, str(exc), slug="invalid-name", errors=[{"field": "name", "message": str(exc)}]
                ) from None
            if name != project["name"]:
                meta["name"] = name
        description = changes.get("description")
        if description is not None:
            if len(description) > MAX_DESCRIPTION:
                raise Problem(422, f"The description is longer than {MAX_DESCRIPTION} characters.")
            if description != project["description"]:
                meta["description"] = description
        return meta

    def update(self, user: User, project_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Archive or unarchive (index-only state; the repository is not touched)."""
        project, _ = project_for(self.index, user, project_id, "editor")
        archived = changes.get("archived")
        if archived is not None and bool(archived) != project["archived"]:
            with self.index.transaction() as db:
                db.execute(
                    "UPDATE projects SET archived = ?, updated_at = ? WHERE id = ?",
                    [int(bool(archived)), now_iso(), project_id],
                )
                _activity(
                    db,
                    project_id,
                    user,
                    "project.updated",
                    "Archive project" if archived else "Unarchive project",
                )
        return self.get(user, project_id)

    # -- trash ------------------------------------------------------------------------------------

    def delete(self, user: User, project_id: str) -> None:
        """Move the project to the trash (restorable for ``trash_days``)."""
        _, rel = project_for(self.index, user, project_id, "owner")
        with self.locks(project_id):
            trash_rel = self.workspace.move_to_trash(rel, project_id)
        with self.index.transaction() as db:
            db.execute(
                "UPDATE projects SET deleted_at = ?, trash_path = ? WHERE id = ?",
                [now_iso(), trash_rel, project_id],
            )
            _activity(db, project_id, user, "project.trashed", "Move project to the trash")
            _audit(db, "project.deleted", user.id, project_id)

    def trash(self, user: User) -> list[dict[str, Any]]:
        rows = self.index.db.execute(
            f"SELECT {LISTED_COLUMNS} FROM projects p JOIN members m ON m.project_id = p.id "  # noqa: S608
            "WHERE m.user_id = ? AND p.deleted_at IS NOT NULL ORDER BY p.deleted_at DESC",
            [user.id],
        ).fetchall()
        days = self.studio.settings.trash_days
        out = []
        for r in rows:
            item = row_to_project(r)
            item["purge_at"] = (datetime.fromisoformat(r[8]) + timedelta(days=days)).isoformat()
            out.append(item)
        return out

    def restore(self, user: User, project_id: str) -> dict[str, Any]:
        project, trash_rel = project_for(self.index, user, project_id, "owner", trashed=True)
        rel = self.workspace.restore_from_trash(trash_rel, project["name"])
        with self.index.transaction() as db:
            db.execute(
                "UPDATE projects SET deleted_at = NULL, trash_path = NULL, path = ?, updated_at = ? WHERE id = ?",
                [rel, now_iso(), project_id],
            )
            _activity(db, project_id, user, "project.restored", "Restore project from the trash")
        return self.get(user, project_id)

    def purge_expired(self, now: datetime | None = None) -> int:
        """Delete for good every project trashed more than ``trash_days`` ago; return how many."""
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=self.studio.settings.trash_days)).isoformat()
        rows = self.index.db.execute(
            "SELECT id, trash_path FROM projects WHERE deleted_at IS NOT NULL AND deleted_at < ?", [cutoff]
        ).fetchall()
        for pid, trash_rel in rows:
            if trash_rel:
                self.workspace.purge(trash_rel)
            with self.index.transaction() as db:
                db.execute("DELETE FROM projects WHERE id = ?", [pid])
                _audit(db, "project.purged", None, pid)
        return len(rows)

    def sole_owned(self, user: User) -> list[str]:
        """The live projects ``user`` is the only owner of."""
        return [
            r[0]
            for r in self.index.db.execute(
                "SELECT m.project_id FROM members m JOIN projects p ON p.id = m.project_id "
                "WHERE m.user_id = ? AND m.role = 'owner' AND p.deleted_at IS NULL AND NOT EXISTS ("
                "  SELECT 1 FROM members o WHERE o.project_id = m.project_id AND o.role = 'owner' AND o.user_id != ?)",
                [user.id, user.id],
            ).fetchall()
        ]

    def forget_user(self, user: User) -> list[str]:
        """Before an account is erased: trash the projects ``user`` alone owns; return their ids."""
        sole = self.sole_owned(user)
        for pid in sole:
            self.delete(user, pid)
        return sole

    def reindex(self) -> dict[str, int]:
        """Rebuild the project rows from the repositories under ``Projects/``; members are kept."""
        seen: set[str] = set()
        added = updated = 0
        for manifest in sorted(self.workspace.projects.glob("*/project.json")):
            root = manifest.parent
            try:
                state = files_to_state(root)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("reindex_skipped", folder=root.name, reason=str(exc))
                continue
            meta = state["meta"]
            pid, rel = meta["uuid"], self.workspace.rel(root)
            seen.add(pid)
            commits = repo.history(root, limit=1)
            changed = commits[0].time if commits else now_iso()
            with self.index.transaction() as db:
                exists = db.execute("SELECT 1 FROM projects WHERE id = ?", [pid]).fetchone()
                db.execute(
                    "INSERT INTO projects(id, name, description, template, path, created_at, updated_at, story_text) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
                    "description = excluded.description, template = excluded.template, path = excluded.path, "
                    "updated_at = excluded.updated_at, story_text = excluded.story_text, deleted_at = NULL, "
                    "trash_path = NULL",
                    [
                        pid,
                        meta["name"],
                        meta.get("description", ""),
                        meta["template"],
                        rel,
                        meta.get("created") or changed,
                        changed,
                        story_text(state),
                    ],
                )
            added, updated = (added, updated + 1) if exists else (added + 1, updated)
        with self.index.transaction() as db:
            gone = db.execute("SELECT id FROM projects WHERE deleted_at IS NULL").fetchall()
            removed = [g[0] for g in gone if g[0] not in seen]
            for pid in removed:
                db.execute("DELETE FROM projects WHERE id = ?", [pid])
        return {"added": added, "updated": updated, "removed": len(removed)}

    # -- members, history, activity ---------------------------------------------------------------

    def members(self, user: User, project_id: str) -> list[dict[str, Any]]:
        project_for(self.index, user, project_id)
        rows = self.index.db.execute(
            "SELECT u.id, u.name, u.email, m.role, m.added_at FROM members m JOIN users u ON u.id = m.user_id "
            "WHERE m.project_id = ? ORDER BY m.added_at",
            [project_id],
        ).fetchall()
        return [
            {"user": {"id": r[0], "name": r[1], "email": r[2]}, "role": r[3], "added_at": r[4]} for r in rows
        ]

    def set_member(self, user: User, project_id: str, member: User, role: str) -> dict[str, Any]:
        project_for(self.index, user, project_id, "owner")
        if role not in ROLES:
            raise Problem(
                422,
                f"role must be one of {', '.join(ROLES)}.",
                errors=[{"field": "role", "message": "unknown role"}],
            )
        with self.index.transaction() as db:
            old = db.execute(
                "SELECT role FROM members WHERE project_id = ? AND user_id = ?", [project_id, member.id]
            ).fetchone()
            if old and old[0] == "owner" and role != "owner":
                _require_another_owner(db, project_id, member.id)
            db.execute(
                "INSERT INTO members(project_id, user_id, role, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(project_id, user_id) DO UPDATE SET role = excluded.role",
                [project_id, member.id, role, now_iso()],
            )
            what = f"Change {member.name}'s role to {role}" if old else f"Add {member.name} as {role}"
            _activity(db, project_id, user, "member.role", what)
            _audit(
                db,
                "member.role_changed",
                user.id,
                project_id,
                member=member.id,
                role=role,
                previous=old[0] if old else None,
            )
        return {"user": {"id": member.id, "name": member.name, "email": member.email}, "role": role}

    def remove_member(self, user: User, project_id: str, member_id: str) -> None:
        if member_id != user.id:
            project_for(self.index, user, project_id, "owner")
        else:
            project_for(self.index, user, project_id)
        with self.index.transaction() as db:
            old = db.execute(
                "SELECT role FROM members WHERE project_id = ? AND user_id = ?", [project_id, member_id]
            ).fetchone()
            if old is None:
                raise Problem(404, "That person is not a member of this project.")
            if old[0] == "owner":
                _require_another_owner(db, project_id, member_id)
            db.execute("DELETE FROM members WHERE project_id = ? AND user_id = ?", [project_id, member_id])
            _activity(db, project_id, user, "member.removed", "Remove a member")
            _audit(db, "member.removed", user.id, project_id, member=member_id, previous=old[0])

    def history(self, user: User, project_id: str) -> list[dict[str, Any]]:
        _, rel = project_for(self.index, user, project_id)
        return [
            {
                "sha": c.sha,
                "message": c.message,
                "author": {"name": c.author.name, "email": c.author.email},
                "time": c.time,
            }
            for c in repo.history(self.root(rel))
        ]

    def activity(self, user: User, project_id: str, limit: int = 200) -> list[dict[str, Any]]:
        project_for(self.index, user, project_id)
        rows = self.index.db.execute(
            "SELECT time, user_id, user_name, kind, summary, detail, id, event_id FROM activity WHERE project_id = ? "
            "ORDER BY id DESC LIMIT ?",
            [project_id, limit],
        ).fetchall()
        return [
            {
                "time": r[0],
                "user": {"id": r[1], "name": r[2]},
                "kind": r[3],
                "summary": r[4],
                "detail": json.loads(r[5]),
                "id": r[6],
                "event_id": r[7],  # the id of the /events message it records, when it records one
            }
            for r in rows
        ]


def _require_another_owner(db: Any, project_id: str, leaving: str) -> None:
    others = db.execute(
        "SELECT COUNT(*) FROM members WHERE project_id = ? AND role = 'owner' AND user_id != ?",
        [project_id, leaving],
    ).fetchone()[0]
    if not others:
        raise Problem(
            409, "A project needs at least one owner: make someone else owner first.", slug="last-owner"
        )


def _activity(db: Any, project_id: str, user: User | None, kind: str, summary: str, **detail: Any) -> None:
    db.execute(
        "INSERT INTO activity(project_id, time, user_id, user_name, kind, summary, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            project_id,
            now_iso(),
            user.id if user else None,
            user.name if user else "studio",
            kind,
            summary,
            json.dumps(detail, sort_keys=True),
        ],
    )


def _audit(db: Any, action: str, actor_id: str | None, target: str | None, **detail: Any) -> None:
    db.execute(
        "INSERT INTO audit(time, actor_id, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        [now_iso(), actor_id, action, target, json.dumps(detail, sort_keys=True)],
    )


def _parse_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise Problem(
            422,
            "id must be a UUID, like 1b4e28ba-2fa1-11d2-883f-0016d3cca427.",
            errors=[{"field": "id", "message": "not a UUID"}],
        ) from None


def _parse_time(value: str, field: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(
            422,
            f"{field} must be an ISO 8601 time, like 2026-01-31T12:00:00Z.",
            errors=[{"field": field, "message": "not an ISO 8601 time"}],
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _fts_query(q: str) -> str:
    """A safe FTS5 query from what a person typed: every word must match, as a prefix."""
    words = re.findall(r"\w+", q or "")
    return " ".join(f'"{w}"*' for w in words[:16])


__all__ = ["RANK", "Projects"]
