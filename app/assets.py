"""Assets: uploads into the project (committed as Git LFS objects), listed in the doc's ``assets``.

Every step an asset goes through is an event on ``/events`` and a line of the activity feed:
``asset.uploaded``, ``asset.thumbnail.queued``, then ``asset.thumbnail.ready`` (``app.outputs``)
or ``asset.thumbnail.failed``; a replaced file is ``asset.changed`` and marks the nodes using it
stale (``app.stale``). Files are served to project members only, with ETag and Range.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Response
from litestar.status_codes import HTTP_201_CREATED

from app.accounts.service import User
from app.activity import record_activity
from app.deps import Services, authenticate, project_path, require_editor, require_member
from app.media import file_response
from app.problems import Problem
from app.stale import AssetChanges
from app.studio import now_iso
from sync.docmodel import read_entry, read_root, set_path
from sync.naming import folder_name
from tasks.kinds import thumbnail_path
from tasks.ledger import event
from tasks.store import TaskStore
from tasks.thumbnails import VIDEO_SUFFIXES

GENERATIVE_FOLDERS = ("Characters", "Styles", "Locations")
THUMBNAIL_SIZE = 320
# The files the studio takes as assets, by kind (each ending is a Git LFS rule of every project).
KINDS: dict[str, tuple[str, ...]] = {
    "image": (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".exr"),
    "video": VIDEO_SUFFIXES,
    "audio": (".wav", ".mp3", ".flac"),
    "model": (".safetensors", ".ckpt", ".pt"),
}
KIND_NAMES = {"image": "images", "video": "video", "audio": "audio", "model": "models"}


def kind_of(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return next((kind for kind, suffixes in KINDS.items() if suffix in suffixes), "other")


def accepted_words() -> str:
    """ "images (.png, .jpg …), video (.mp4 …), …" for messages."""
    return ", ".join(f"{KIND_NAMES[k]} ({', '.join(v)})" for k, v in KINDS.items())


@get("/api/asset-kinds", before_request=authenticate, sync_to_thread=False, tags=["assets"])
def asset_kinds(svc: NamedDependency[Services]) -> dict[str, Any]:
    """What the studio takes as assets: ``max_bytes``, the largest file, and ``kinds``, the file
    name endings of each kind, so a client can refuse a file before sending it."""
    return {
        "max_bytes": svc.studio.settings.max_upload_bytes,
        "kinds": {kind: list(suffixes) for kind, suffixes in KINDS.items()},
    }


def safe_file_name(raw: str) -> str:
    name = PurePosixPath(raw.replace("\\", "/")).name
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix.lower()
    if not stem or stem in (".", ".."):
        raise Problem(
            422, "The uploaded file needs a name.", errors=[{"field": "file", "message": "no name"}]
        )
    return folder_name(stem) + "".join(ch for ch in suffix if ch.isalnum() or ch == ".")[:12]


class AssetController(Controller):
    path = "/api/projects/{project_id:uuid}/assets"
    tags = ["assets"]
    guards = [require_member]  # it signs the caller in too

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        guards=[require_editor],
        summary="Upload an asset (multipart field 'file')",
    )
    async def upload_asset(
        self, request: Request[Any, Any, Any], project_id: FromPath[UUID], user: NamedDependency[User], svc: NamedDependency[Services],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> dict[str, Any]:  # fmt: skip
        pid, rel = str(project_id), project_path(request)
        upload = data.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(
                422,
                "Send the file as the multipart field 'file'.",
                errors=[{"field": "file", "message": "missing"}],
            )
        folder = data.get("folder") or ""
        if folder and folder not in GENERATIVE_FOLDERS:
            raise Problem(422, f"folder must be one of {', '.join(GENERATIVE_FOLDERS)} (or left out).")
        name = safe_file_name(upload.filename or "")
        if kind_of(name) == "other":
            suffix = PurePosixPath(name).suffix
            what = f"{suffix} files" if suffix else "files without a type ending (.png, .mp4 …)"
            raise Problem(415, f"{upload.filename}: the studio does not take {what}. It takes {accepted_words()}.",
                          errors=[{"field": "file", "message": "unsupported kind"}])  # fmt: skip
        root = svc.projects.root(rel)
        base = f"01_Assets/Generative_Assets/{folder}" if folder else "01_Assets/Uploads"
        # Edits waiting for the debounce are committed first, under their own authors, so the
        # commit of the upload is the uploader's.
        await svc.rooms.flush(pid)
        target = _free_path(root / base, name)
        sha256, size = await asyncio.to_thread(_save, upload, target)
        asset: dict[str, Any] = {
            "id": str(uuid.uuid4()), "name": target.name, "kind": kind_of(target.name),
            "path": target.relative_to(root).as_posix(), "sha256": sha256, "size": size,
            "uploaded_by": user.name, "created": now_iso(),
        }  # fmt: skip
        room = await svc.rooms.get(pid)
        room.apply_local(user.id, lambda doc: set_path(doc, ["assets", asset["id"]], asset))
        await svc.rooms.flush(pid, note=f"Upload {asset['name']}")
        uploaded = {"type": "asset.uploaded", "project_id": pid, "asset": asset}
        request.app.state.events.publish(uploaded)
        record_activity(
            svc.studio,
            pid,
            user.id,
            "asset.uploaded",
            f"{user.name} uploaded {asset['name']}",
            uploaded,
            event_id=str(uploaded["id"]),
        )
        _queue_thumbnail(request, svc, pid, asset, user)
        return {k: asset[k] for k in ("id", "name", "kind", "path", "sha256", "size")}

    @put(
        "/{asset_id:str}/file",
        guards=[require_editor],
        summary="Replace an asset's file (multipart field 'file')",
    )
    async def replace_asset(
        self, request: Request[Any, Any, Any], project_id: FromPath[UUID], asset_id: FromPath[str], user: NamedDependency[User], svc: NamedDependency[Services],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> dict[str, Any]:  # fmt: skip
        """A new version of the asset under the same path; the nodes that use it become stale."""
        pid, rel = str(project_id), project_path(request)
        upload = data.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(422, "Send the file as the multipart field 'file'.",
                          errors=[{"field": "file", "message": "missing"}])  # fmt: skip
        room = await svc.rooms.get(pid)
        asset = read_entry(room.doc, "assets", asset_id)
        if asset is None:
            raise Problem(404, "There is no such asset in this project.")
        new_kind = kind_of(upload.filename or asset["name"])
        if upload.filename and new_kind != asset["kind"]:
            raise Problem(422, f"{asset['name']} is a {asset['kind']} file; a {new_kind} file cannot replace it.",
                          errors=[{"field": "file", "message": "different kind"}])  # fmt: skip
        root = svc.projects.root(rel)
        changes: AssetChanges = request.app.state.asset_changes
        scratch = root / "05_Cache" / f".replace-{uuid.uuid4().hex}"
        await svc.rooms.flush(pid)  # others' pending edits first, under their names
        try:
            sha256, size = await asyncio.to_thread(_save, upload, scratch)
            changes.expected[(pid, asset["path"])] = sha256
            await asyncio.to_thread(scratch.replace, root / asset["path"])
        finally:
            scratch.unlink(missing_ok=True)
        await changes.changed(pid, asset_id, sha256=sha256, size=size, user_id=user.id,
                              reason=f"{user.name} replaced {asset['name']}")  # fmt: skip
        changes.expected.pop((pid, asset["path"]), None)
        updated = {**asset, "sha256": sha256, "size": size}
        _queue_thumbnail(request, svc, pid, updated, user)
        return {k: updated[k] for k in ("id", "name", "kind", "path", "sha256", "size")}

    @get("/")
    async def list_assets(
        self, project_id: FromPath[UUID], svc: NamedDependency[Services]
    ) -> list[dict[str, Any]]:
        room = await svc.rooms.get(str(project_id))
        return sorted(read_root(room.doc, "assets").values(), key=lambda a: a.get("created", ""))

    @get("/{asset_id:str}/file")
    async def asset_file(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[UUID],
        asset_id: FromPath[str],
        svc: NamedDependency[Services],
    ) -> Response[Any]:
        """The asset's bytes; honours single-range requests (``Range: bytes=a-b``) for video players."""
        root, asset = await live_entry(request, svc, str(project_id), "assets", asset_id)
        path = file_within(root, asset["path"]) if asset else None
        if asset is None or path is None:
            raise Problem(404, "There is no such asset in this project.")
        return file_response(request, path, etag=f'"{asset["sha256"]}"', filename=asset["name"])

    @get("/{asset_id:str}/thumbnail")
    async def asset_thumbnail(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[UUID],
        asset_id: FromPath[str],
        svc: NamedDependency[Services],
    ) -> Response[Any]:
        """The asset's preview (PNG), once ``asset.thumbnail.ready`` has been announced."""
        root, asset = await live_entry(request, svc, str(project_id), "assets", asset_id)
        path = file_within(root, thumbnail_path(asset["path"], THUMBNAIL_SIZE)) if asset else None
        if path is None:
            raise Problem(404, "This asset has no thumbnail (yet).")
        stat = path.stat()
        return file_response(
            request, path, etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"', filename=path.name
        )


async def live_entry(
    request: Request[Any, Any, Any], svc: Services, project_id: str, name: str, key: str
) -> tuple[Path, dict[str, Any] | None]:
    """Behind :func:`require_member`: the project's folder and one entry of a top-level map of
    its live document (``assets``, ``takes``), or None when there is no such entry."""
    room = await svc.rooms.get(project_id)
    entry = read_entry(room.doc, name, key)
    return svc.projects.root(project_path(request)), entry if isinstance(entry, dict) else None


def file_within(root: Path, rel: str) -> Path | None:
    """``root / rel`` if it is a file inside ``root`` (never a path that climbs out), else None."""
    path = (root / rel).resolve()
    return path if path.is_relative_to(root.resolve()) and path.is_file() else None


def _queue_thumbnail(
    request: Request[Any, Any, Any], svc: Services, pid: str, asset: dict[str, Any], user: User
) -> None:
    queue_thumbnail(request.app.state, svc.tasks, pid, asset, user.id)


def queue_thumbnail(
    state: Any, tasks: TaskStore, pid: str, asset: dict[str, Any], user_id: str | None
) -> None:
    """Queue the preview of an image or video asset (``state``: the app's state, with its task
    plumbing)."""
    if asset.get("kind") not in ("image", "video"):
        return
    task = tasks.create(project_id=pid, kind="asset.thumbnail", queue="cpu",
                        params={"path": asset["path"], "size": THUMBNAIL_SIZE, "asset": asset["id"]},
                        node_id=None, requester_id=user_id)  # fmt: skip
    state.publish_task(event("queued", task))
    state.events.publish({"type": "asset.thumbnail.queued", "project_id": pid, "asset": asset["id"],
                          "task": task["id"]})  # fmt: skip
    state.send_task(task)


def _save(upload: UploadFile, target: Path) -> tuple[str, int]:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    upload.file.seek(0)
    with open(target, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def _free_path(folder: Path, name: str) -> Path:
    candidate, n = folder / name, 1
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}_{n}{suffix}"
    return candidate
