"""Assets: uploads into the project (committed as Git LFS objects), listed in the doc's ``assets``."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import File, Response, Stream
from litestar.status_codes import HTTP_201_CREATED

from app.accounts.service import User
from app.deps import Services, require_member, require_user
from app.problems import Problem
from app.projects.access import project_for
from app.studio import now_iso
from sync.docmodel import doc_to_state, set_path
from sync.naming import folder_name
from tasks.runner import event

GENERATIVE_FOLDERS = ("Characters", "Styles", "Locations")
KINDS = {
    "image": {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".exr"},
    "video": {".mp4", ".mov", ".webm"},
    "audio": {".wav", ".mp3", ".flac"},
    "model": {".safetensors", ".ckpt", ".pt"},
}


def kind_of(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return next((kind for kind, suffixes in KINDS.items() if suffix in suffixes), "other")


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
    guards = [require_user, require_member]

    @post("/", status_code=HTTP_201_CREATED, summary="Upload an asset (multipart field 'file')")
    async def upload_asset(
        self, request: Request[Any, Any, Any], project_id: UUID, user: User, svc: Services,
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> dict[str, Any]:  # fmt: skip
        pid = str(project_id)
        _, rel = project_for(svc.studio.index, user, pid, "editor")
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
        root = svc.projects.root(rel)
        base = f"01_Assets/Generative_Assets/{folder}" if folder else "01_Assets/Uploads"
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
        request.app.state.events.publish({"type": "asset.uploaded", "project_id": pid, "asset": asset})
        if asset["kind"] == "image":
            task = svc.tasks.create(project_id=pid, kind="asset.thumbnail", queue="cpu",
                                    params={"path": asset["path"], "size": 320}, node_id=None, requester_id=user.id)  # fmt: skip
            request.app.state.publish_task(event("queued", task))
            request.app.state.send_task(task)
        return {k: asset[k] for k in ("id", "name", "kind", "path", "sha256", "size")}

    @get("/")
    async def list_assets(self, project_id: UUID, user: User, svc: Services) -> list[dict[str, Any]]:
        pid = str(project_id)
        project_for(svc.studio.index, user, pid)
        room = await svc.rooms.get(pid)
        return sorted(doc_to_state(room.doc)["assets"].values(), key=lambda a: a.get("created", ""))

    @get("/{asset_id:str}/file")
    async def asset_file(
        self, request: Request[Any, Any, Any], project_id: UUID, asset_id: str, user: User, svc: Services
    ) -> Response[Any]:
        """The asset's bytes; honours single-range requests (``Range: bytes=a-b``) for video players."""
        pid = str(project_id)
        _, rel = project_for(svc.studio.index, user, pid)
        room = await svc.rooms.get(pid)
        asset = doc_to_state(room.doc)["assets"].get(asset_id)
        root = svc.projects.root(rel)
        path = (root / asset["path"]).resolve() if asset else None
        if asset is None or path is None or not path.is_relative_to(root.resolve()) or not path.is_file():
            raise Problem(404, "There is no such asset in this project.")
        etag = f'"{asset["sha256"]}"'
        size = path.stat().st_size
        headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        wanted = request.headers.get("range")
        if not wanted:
            return File(path, filename=asset["name"], etag=None, headers=headers)
        span = _parse_range(wanted, size)
        if span is None:
            return Response(b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        start, end = span
        return Stream(
            _chunks(path, start, end), status_code=206, media_type="application/octet-stream",
            headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(end - start + 1)},
        )  # fmt: skip


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` (one range) as inclusive offsets; None if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec or "-" not in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            length = int(last)
            start, end = max(0, size - length), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    return (start, end) if 0 <= start <= end < size else None


async def _chunks(path: Path, start: int, end: int) -> AsyncIterator[bytes]:
    left = end - start + 1
    with open(path, "rb") as fh:  # noqa: ASYNC230 - a local file read in 256 KiB steps
        fh.seek(start)
        while left > 0:
            chunk = fh.read(min(left, 256 * 1024))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


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
