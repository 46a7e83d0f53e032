"""Moving projects in and out: git bundle and zip export, bulk export, import as a new project."""

from __future__ import annotations

import os
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

from app.accounts.service import User
from app.problems import Problem
from app.projects.access import project_for
from app.projects.service import Projects, _activity
from app.studio import now_iso
from sync import repo
from sync.jsonfile import read_json, write_json
from sync.model import State, story_text
from sync.naming import InvalidName, clean_name
from sync.workspace import ImportError_

FORMATS = ("bundle", "zip")
BUNDLE_SIGNATURES = (b"# v2 git bundle", b"# v3 git bundle")


class Transfers:
    def __init__(self, projects: Projects) -> None:
        self.projects = projects
        self.index = projects.index
        self.workspace = projects.workspace
        self.tmp = projects.studio.settings.data_dir / "tmp"

    def temp_path(self, suffix: str) -> Path:
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp, suffix=suffix)
        os.close(fd)
        return Path(name)

    def export(self, user: User, project_id: str, fmt: str) -> tuple[Path, str]:
        """Write the export to a temporary file; return it and the download name."""
        if fmt not in FORMATS:
            raise Problem(
                422, "format must be bundle or zip.", errors=[{"field": "format", "message": "bundle|zip"}]
            )
        _, rel = project_for(self.index, user, project_id)
        root = self.workspace.path_of(rel)
        dest = self.temp_path("." + fmt)
        with self.projects.locks(project_id):
            if fmt == "bundle":
                repo.bundle(root, dest)
            else:
                self.workspace.write_zip(rel, dest)
        return dest, f"{root.name}.{fmt}"

    def export_many(self, user: User, ids: list[str]) -> tuple[Path, str]:
        """One zip holding a git bundle of each project."""
        dest = self.temp_path(".zip")
        try:
            with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED) as zf:
                for pid in ids:
                    path, name = self.export(user, pid, "bundle")
                    try:
                        zf.write(path, name)
                    finally:
                        path.unlink(missing_ok=True)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest, "projects.zip"

    def import_file(self, user: User, upload: Path, name: str | None = None) -> dict[str, Any]:
        """Import an exported bundle or zip as a new project owned by ``user``."""
        with open(upload, "rb") as fh:
            head = fh.read(16)
        new_name: str | None = None
        if name:
            try:
                new_name = clean_name(name)
            except InvalidName as exc:
                raise Problem(422, str(exc), slug="invalid-name") from None
        created = now_iso()
        holder: dict[str, str] = {}

        def fresh_uuid(old: str) -> str:
            try:
                old = str(uuid.UUID(old))
            except (ValueError, TypeError, AttributeError):
                return str(uuid.uuid4())
            taken = self.index.db.execute("SELECT 1 FROM projects WHERE id = ?", [old]).fetchone()
            return str(uuid.uuid4()) if taken else old

        def register(rel: str, state: State) -> None:
            pid = state["meta"]["uuid"]
            holder["id"] = pid
            with self.index.transaction() as db:
                db.execute(
                    "INSERT INTO projects(id, name, description, template, path, created_at, updated_at, archived, "
                    "created_by, story_text) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    [
                        pid,
                        state["meta"]["name"],
                        state["meta"].get("description", ""),
                        state["meta"]["template"],
                        rel,
                        created,
                        created,
                        user.id,
                        story_text(state),
                    ],
                )
                db.execute(
                    "INSERT INTO members(project_id, user_id, role, added_at) VALUES (?, ?, 'owner', ?)",
                    [pid, user.id, created],
                )
                _activity(db, pid, user, "project.imported", f"Import project {state['meta']['name']}")

        author = repo.Author(user.name, user.commit_email)
        try:
            with self.workspace.staged() as stage:
                if head.startswith(b"PK\x03\x04"):
                    self.workspace.unpack_zip(upload, stage)
                elif head.startswith(BUNDLE_SIGNATURES):
                    stage.rmdir()
                    try:
                        repo.clone_bundle(upload, stage)
                    except ValueError as exc:
                        raise ImportError_(str(exc)) from None
                else:
                    raise ImportError_("The file is neither a git bundle nor a zip exported by the studio.")
                if new_name:
                    _rename_manifest(stage, new_name)
                self.workspace.import_tree(stage, author, "Import project", fresh_uuid, register)
        except ImportError_ as exc:
            raise Problem(422, str(exc), slug="bad-import") from None
        return self.projects.get(user, holder["id"])


def _rename_manifest(stage: Path, name: str) -> None:
    manifest = stage / "project.json"
    if manifest.exists():
        data = read_json(manifest)
        if isinstance(data, dict):
            data["name"] = name
            write_json(manifest, data)
