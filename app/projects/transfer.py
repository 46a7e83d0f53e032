"""Moving projects in and out: git bundle and zip export, bulk export, import as a new project.

The bulk export of several projects is one zip that Import takes back whole (``import_file``):

    <Folder>.bundle                 one git bundle per project: every branch, the whole history
    lfs/objects/aa/bb/<sha256>      each Git LFS object (media) those histories point to, once

A bundle cannot carry LFS objects, so they travel beside the bundles, laid out as git-lfs keeps
them. Importing it checks every project (each bundle clones, each object matches its sha256)
before the first is added, so a damaged file adds nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path, PurePosixPath
from typing import Any

from app.accounts.service import User
from app.problems import Problem
from app.projects.access import project_for
from app.projects.service import Projects, _activity
from app.studio import now_iso
from sync import lfs, repo
from sync.jsonfile import read_json, write_json
from sync.model import MANIFEST, State, story_text
from sync.naming import InvalidName, clean_name
from sync.workspace import ZIP_MAX_BYTES, ZIP_MAX_MEMBERS, ImportError_

FORMATS = ("bundle", "zip")
BUNDLE_SIGNATURES = (b"# v2 git bundle", b"# v3 git bundle")
LFS_MEMBER = re.compile(r"^lfs/objects/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})$")


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
        """One zip holding a git bundle of each project and the LFS objects their histories use
        (the layout in the module docstring), which :meth:`import_file` takes back whole."""
        dest = self.temp_path(".zip")
        added: set[str] = set()
        try:
            with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for pid in ids:
                    _, rel = project_for(self.index, user, pid)
                    root = self.workspace.path_of(rel)
                    path = self.temp_path(".bundle")
                    try:
                        with self.projects.locks(pid):  # the bundle and its media from one moment
                            repo.bundle(root, path)
                            media = lfs.referenced(root)
                        zf.write(path, f"{root.name}.bundle")
                    finally:
                        path.unlink(missing_ok=True)
                    git_dir = root / ".git"
                    for oid in sorted(media.keys() - added):
                        source = lfs.object_path(git_dir, oid)
                        if source.is_file():  # one this repository lacks too stays a pointer
                            zf.write(source, lfs.object_path(Path(), oid).as_posix())
                            added.add(oid)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest, "projects.zip"

    def import_file(self, user: User, upload: Path, name: str | None = None) -> dict[str, Any]:
        """Import an exported bundle or zip as a new project owned by ``user``; a bulk export
        (several bundles in one zip) as one new project each: ``{"items", "total"}``.

        Media files a bundle's history points to but the file does not carry stay Git LFS
        pointers, and are listed as ``missing_media``."""
        with open(upload, "rb") as fh:
            head = fh.read(16)
        if head.startswith(b"PK\x03\x04") and _holds_bundles(upload):
            if name:
                raise Problem(422, "A name can be given only when importing one project; this file holds several.",
                              errors=[{"field": "name", "message": "one project only"}])  # fmt: skip
            return self._import_many(user, upload)
        new_name: str | None = None
        if name:
            try:
                new_name = clean_name(name)
            except InvalidName as exc:
                raise Problem(422, str(exc), slug="invalid-name") from None
        created = now_iso()
        fresh_uuid = self._fresh_uuids()
        author = repo.Author(user.name, user.commit_email)
        missing: list[str] = []
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
                    missing = lfs.check_out_media(stage)
                else:
                    raise ImportError_("The file is neither a git bundle nor a zip exported by the studio.")
                if new_name:
                    _rename_manifest(stage, new_name)
                state = self.workspace.prepare_import(stage, author, "Import project", fresh_uuid)
                self.workspace.adopt(stage, state, lambda rel, st: self._register(user, created, rel, st))
        except ImportError_ as exc:
            raise Problem(422, str(exc), slug="bad-import") from None
        return {**self.projects.get(user, state["meta"]["uuid"]), "missing_media": missing}

    def _import_many(self, user: User, upload: Path) -> dict[str, Any]:
        """Every project of a bulk export, or none: each is cloned, given its media and checked
        in a staging folder first; only then are they moved in, and taken out again if one of
        those moves fails."""
        created = now_iso()
        fresh_uuid = self._fresh_uuids()
        author = repo.Author(user.name, user.commit_email)
        ready: list[tuple[Path, State, list[str]]] = []
        placed: list[tuple[str, str]] = []
        try:
            with ExitStack() as stack:
                zf = stack.enter_context(zipfile.ZipFile(upload))
                bundles, objects = _bulk_members(zf)
                for member in bundles:
                    stage = stack.enter_context(self.workspace.staged())
                    label = PurePosixPath(member.filename).name
                    bundle = self.temp_path(".bundle")
                    try:
                        _extract(zf, member, bundle, label)
                        stage.rmdir()
                        repo.clone_bundle(bundle, stage)
                    except ValueError as exc:
                        raise ImportError_(f"{label}: {exc}") from None
                    finally:
                        bundle.unlink(missing_ok=True)
                    git_dir = stage / ".git"
                    for oid, size in lfs.referenced(stage).items():
                        if oid in objects and not lfs.object_path(git_dir, oid).exists():
                            _extract_object(zf, objects[oid], lfs.object_path(git_dir, oid), oid, size)
                    missing = lfs.check_out_media(stage)
                    try:
                        state = self.workspace.prepare_import(stage, author, "Import project", fresh_uuid)
                    except ImportError_ as exc:
                        raise ImportError_(f"{label}: {exc}") from None
                    ready.append((stage, state, missing))
                try:
                    for stage, state, _ in ready:
                        register = lambda rel, st: self._register(user, created, rel, st)  # noqa: E731
                        placed.append((state["meta"]["uuid"], self.workspace.adopt(stage, state, register)))
                except BaseException:
                    for pid, rel in placed:
                        self._forget(pid, rel)
                    raise
        except zipfile.BadZipFile as exc:
            raise Problem(
                422, f"The file is damaged ({exc}). Nothing was imported.", slug="bad-import"
            ) from None
        except ImportError_ as exc:
            raise Problem(422, f"{exc} Nothing was imported.", slug="bad-import") from None
        items = [
            {**self.projects.get(user, state["meta"]["uuid"]), "missing_media": missing}
            for _, state, missing in ready
        ]
        return {"items": items, "total": len(items)}

    def _fresh_uuids(self) -> Callable[[str], str]:
        """Keeps an imported project's uuid unless a project here has it (or another project of
        the same file took it): then a new one."""
        given: set[str] = set()

        def fresh_uuid(old: str) -> str:
            try:
                old = str(uuid.UUID(old))
            except (ValueError, TypeError, AttributeError):
                old = str(uuid.uuid4())
            taken = self.index.db.execute("SELECT 1 FROM projects WHERE id = ?", [old]).fetchone()
            new = str(uuid.uuid4()) if taken or old in given else old
            given.add(new)
            return new

        return fresh_uuid

    def _register(self, user: User, created: str, rel: str, state: State) -> None:
        pid = state["meta"]["uuid"]
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

    def _forget(self, pid: str, rel: str) -> None:
        """Undo one project of an import that did not finish: its rows and its folder."""
        with self.index.transaction() as db:
            db.execute("DELETE FROM activity WHERE project_id = ?", [pid])
            db.execute("DELETE FROM projects WHERE id = ?", [pid])
        self.workspace.discard(rel)


def _holds_bundles(path: Path) -> bool:
    """Whether a zip is a bulk export: git bundles and no project of its own (``project.json``)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [PurePosixPath(n) for n in zf.namelist()]
    except zipfile.BadZipFile:
        return False
    return any(n.suffix.lower() == ".bundle" for n in names) and not any(n.name == MANIFEST for n in names)


def _bulk_members(zf: zipfile.ZipFile) -> tuple[list[zipfile.ZipInfo], dict[str, zipfile.ZipInfo]]:
    """The bundles of a bulk export, and its LFS objects by sha256; refuses oversized files."""
    members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) > ZIP_MAX_MEMBERS or sum(m.file_size for m in members) > ZIP_MAX_BYTES:
        raise ImportError_("The file is too large to import.")
    bundles = sorted((m for m in members if PurePosixPath(m.filename).suffix.lower() == ".bundle"),
                     key=lambda m: m.filename)  # fmt: skip
    objects = {match[1]: m for m in members if (match := LFS_MEMBER.match(m.filename))}
    return bundles, objects


def _extract(zf: zipfile.ZipFile, member: zipfile.ZipInfo, dest: Path, label: str) -> None:
    with zf.open(member) as src, open(dest, "wb") as out:
        if not src.read(16).startswith(BUNDLE_SIGNATURES):
            raise ValueError("it is not a git bundle.")
        src.seek(0)
        shutil.copyfileobj(src, out, 1 << 20)


def _extract_object(zf: zipfile.ZipFile, member: zipfile.ZipInfo, dest: Path, oid: str, size: int) -> None:
    """Copy an LFS object out of the zip into a repository's store, checking it is the content
    its name says; a mismatch means the file was damaged."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    digest, length = hashlib.sha256(), 0
    with zf.open(member) as src, open(tmp, "wb") as out:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            length += len(chunk)
            out.write(chunk)
    if digest.hexdigest() != oid or length != size:
        tmp.unlink(missing_ok=True)
        raise ImportError_(
            f"The media file {member.filename} in it is damaged (its content does not match its name)."
        )
    tmp.replace(dest)


def _rename_manifest(stage: Path, name: str) -> None:
    manifest = stage / "project.json"
    if manifest.exists():
        data = read_json(manifest)
        if isinstance(data, dict):
            data["name"] = name
            write_json(manifest, data)
