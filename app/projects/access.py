"""Who may see and change a project.

A project is invisible (404) to anyone who is not a member; a member whose role is too low
gets 403. Roles rank viewer < editor < owner.
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec

from app.accounts.service import User
from app.problems import Problem
from sync.db import Index

ROLES = ("viewer", "editor", "owner")
RANK = {role: i for i, role in enumerate(ROLES)}
_decode = msgspec.json.Decoder().decode


def can_write(role: str | None) -> bool:
    """Whether a member with ``role`` may change the project (editors and owners)."""
    return role is not None and RANK.get(role, -1) >= RANK["editor"]


# What an access check reads; a listing (``LISTED_COLUMNS``) names the collaborators as well.
PROJECT_COLUMNS = (
    "p.id, p.name, p.description, p.template, p.path, p.created_at, p.updated_at, p.archived, "
    "p.deleted_at, p.trash_path, m.role"
)
# The collaborators are kept on the project's row by triggers (sync/db.py, v7), as JSON.
LISTED_COLUMNS = f"{PROJECT_COLUMNS}, p.collaborators"


class Collaborator(TypedDict):
    """A person on a project, as project listings name them."""

    id: str
    name: str
    role: str


class ProjectOut(TypedDict):
    """A project as ``GET /api/projects`` and ``GET /api/projects/{id}`` answer it."""

    id: str
    name: str
    description: str
    template: str
    path: str
    created_at: str
    updated_at: str
    archived: bool
    deleted_at: str | None
    role: str | None
    preview_url: str
    collaborators: list[Collaborator]


class ProjectListOut(TypedDict):
    items: list[ProjectOut]
    total: int


def row_to_project(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": row[0],
        "name": row[1],
        "description": row[2],
        "template": row[3],
        "path": row[4],
        "created_at": row[5],
        "updated_at": row[6],
        "archived": bool(row[7]),
        "deleted_at": row[8],
        "role": row[10],
        "preview_url": f"/api/projects/{row[0]}/preview",
        # Only a listing's row (LISTED_COLUMNS) has them; an access check's stops at the role.
        "collaborators": _decode(row[11]) if len(row) > 11 and row[11] else [],
    }


def project_for(
    index: Index, user: User, project_id: str, need: str = "viewer", *, trashed: bool = False,
    listed: bool = False,
) -> tuple[dict[str, Any], str]:  # fmt: skip
    """The project and its workspace path (or trash path) if ``user`` holds at least role ``need``;
    ``listed``: with its collaborators, as a response shows it."""
    row = index.db.execute(
        f"SELECT {LISTED_COLUMNS if listed else PROJECT_COLUMNS} "  # noqa: S608
        "FROM projects p JOIN members m ON m.project_id = p.id "
        "WHERE p.id = ? AND m.user_id = ?",
        [project_id, user.id],
    ).fetchone()
    if row is None or (row[8] is not None) != trashed:
        where = "in the trash" if trashed else "among your projects"
        raise Problem(404, f"There is no project {project_id} {where}.", slug="project-not-found")
    check_role(row[10], need)
    return row_to_project(row), (row[9] if trashed else row[4])


def check_role(role: str, need: str) -> None:
    """403 unless ``role`` ranks at least ``need``."""
    if RANK[role] < RANK[need]:
        raise Problem(403, f"You are a {role} of this project; this needs the {need} role.", slug="role")
