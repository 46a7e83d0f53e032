"""Where the results of tasks land: one server-side function, two ways in.

:meth:`Outputs.store` takes the outputs of a finished task and puts them in its project: takes
as ``03_Renders/<canvas or scene>/<node or shot>/take_0001.png`` … (numbered per node, a
number never used twice), recorded in the doc's ``takes`` map through the live room, so every
connected client sees them, and committed (media as Git LFS objects) with the requester as
author; exports under ``06_Exports/``, cache files under ``05_Cache/``. The in-process workers
call it directly (:meth:`Outputs.in_process`); ``studio worker`` processes, possibly on other
machines, POST the files to ``/api/tasks/{id}/outputs`` (:func:`upload_outputs`) with the
task's upload token (``tasks.outputs``).

Results of a task that was cancelled meanwhile are refused (409), so nothing partial is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from litestar import Request, post
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body, FromPath
from litestar.status_codes import HTTP_201_CREATED
from pycrdt import Doc, Map

from app.activity import record_activity
from app.deps import bearer_token
from app.problems import Problem
from app.studio import Studio, now_iso
from sync.docmodel import read_root, set_path
from sync.naming import folder_name
from sync.rooms import Rooms
from tasks.outputs import Delivery, DeliveryRefused, Output, token_ok
from tasks.store import TaskStore

RENDERS = "03_Renders"
TAKE_FILE = re.compile(r"take_(\d{4,})\.[A-Za-z0-9]+$")
ROLE_FOLDERS = {"export": "06_Exports/", "cache": "05_Cache/"}
MEDIA_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "video/mp4": ".mp4",
                  "video/webm": ".webm", "audio/wav": ".wav", "audio/x-wav": ".wav"}  # fmt: skip
MAX_OUTPUTS = 64
Publish = Callable[[dict[str, Any]], None]


class Outputs:
    """Stores task results in projects (see the module docstring)."""

    def __init__(self, studio: Studio, rooms: Rooms, tasks: TaskStore, publish: Publish, secret: str) -> None:
        self.studio, self.rooms, self.tasks, self.publish = studio, rooms, tasks, publish
        self.secret = secret
        self.loop: asyncio.AbstractEventLoop | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    def in_process(self) -> Delivery:
        """The delivery of the server's own workers: :meth:`store` on the server's event loop."""

        def deliver(task_id: str, outputs: list[Output]) -> list[dict[str, Any]]:
            if self.loop is None:
                raise DeliveryRefused("The studio is not running; the results could not be stored.")
            future = asyncio.run_coroutine_threadsafe(self.store(task_id, outputs), self.loop)
            try:
                return future.result()
            except Problem as exc:
                raise DeliveryRefused(str(exc.detail), cancelled=exc.status_code == 409) from None

        return deliver

    async def store(self, task_id: str, outputs: list[Output]) -> list[dict[str, Any]]:
        """Put ``outputs`` of the running task ``task_id`` into its project; what was stored.

        Raises :class:`Problem`: 404 unknown task, 409 a task that is not running any more (or
        was cancelled), 422 an output with a destination outside what tasks may write."""
        task = self.tasks.get(task_id)
        if task is None:
            raise Problem(404, f"There is no task {task_id}.", slug="task-not-found")
        if task["state"] != "running" or task["cancel_requested"]:
            raise Problem(409, f"The task is {'cancelled' if task['cancel_requested'] else task['state']}; "
                          "its results are discarded.", slug="task-not-running")  # fmt: skip
        if len(outputs) > MAX_OUTPUTS:
            raise Problem(422, f"A task may hand back at most {MAX_OUTPUTS} files.")
        project_id = task["project_id"]
        root = self.rooms.project_root(project_id)
        if root is None:
            raise Problem(409, "The project of this task no longer exists.", slug="task-not-running")
        for output in outputs:
            _check(output, root)
        lock = self._locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            stored = [await asyncio.to_thread(_place, root, o.dest, o) for o in outputs if o.role != "take"]
            takes = [o for o in outputs if o.role == "take"]
            if takes:
                stored += await self._store_takes(task, root, takes)
        if task["kind"] == "asset.thumbnail" and stored:
            self._thumbnail_ready(task, stored[0])
        return stored

    async def _store_takes(
        self, task: dict[str, Any], root: Path, outputs: list[Output]
    ) -> list[dict[str, Any]]:
        project_id, requester = task["project_id"], task["requester_id"] or "studio"
        # Edits waiting for the debounce are committed first, under their own authors, so the
        # commit of the take is the requester's.
        await self.rooms.flush(project_id)
        room = await self.rooms.get(project_id)
        target = _target(task)
        folder = f"{RENDERS}/{_folder(target)}"
        takes_now = read_root(room.doc, "takes")
        first = await asyncio.to_thread(next_take_number, root, folder, takes_now)
        duration = _seconds_since(task["started_at"])
        who = {"id": requester, "name": self._user_name(task["requester_id"])}
        records: dict[str, dict[str, Any]] = {}
        stored: list[dict[str, Any]] = []
        for number, output in enumerate(outputs, start=first):
            rel = f"{folder}/take_{number:04d}{_suffix(output)}"
            placed = await asyncio.to_thread(_place, root, rel, output)
            take_id = str(uuid.uuid4())
            params = {k: v for k, v in task["params"].items() if k != "target" and v is not None}
            records[take_id] = {
                **target, "number": number, "path": rel, "media_type": output.media_type,
                "sha256": placed["sha256"], "size": placed["size"], "params": params,
                "seed": output.meta.get("seed", task["params"].get("seed")),
                "model": output.meta.get("model", task["params"].get("model", "")),
                "duration_s": round(duration, 3), "task": task["id"], "kind": task["kind"],
                "created": now_iso(), "requester": who,
            }  # fmt: skip
            stored.append({**output.meta, **placed, "take": take_id})  # the task shows its seed, model …
        room.apply_local(requester, lambda doc: _add_takes(doc, records, target))
        numbers = ", ".join(str(r["number"]) for r in records.values())
        label = target.get("node") or target.get("shot") or "unsorted"
        await self.rooms.flush(project_id, note=f"Take {numbers} of {label}")
        for take_id, record in records.items():
            self.publish(
                {"type": "take.created", "project_id": project_id, "take": {"id": take_id, **record}}
            )
        return stored

    def _thumbnail_ready(self, task: dict[str, Any], thumb: dict[str, Any]) -> None:
        asset_id = task["params"].get("asset")
        project_id = task["project_id"]
        event = {"type": "asset.thumbnail.ready", "project_id": project_id, "asset": asset_id,
                 "source": task["params"].get("path"), "thumbnail": thumb["path"], "task": task["id"]}  # fmt: skip
        self.publish(event)
        record_activity(self.studio, project_id, None, "asset.thumbnail.ready",
                        f"Thumbnail of {task['params'].get('path')} is ready", event, event_id=event["id"])  # fmt: skip

    def _user_name(self, user_id: str | None) -> str:
        row = self.studio.index.db.execute("SELECT name FROM users WHERE id = ?", [user_id]).fetchone()
        return str(row[0]) if row else "studio"


def next_take_number(root: Path, folder: str, takes: dict[str, Any]) -> int:
    """The number of the next take in ``folder``: past every take the doc records there, every
    take file on disk and every one the repository ever held, so no number is used twice."""
    used = [int(t["number"]) for t in takes.values()
            if isinstance(t, dict) and str(t.get("path", "")).startswith(folder + "/") and t.get("number")]  # fmt: skip
    here = root / folder
    names = [p.name for p in here.iterdir()] if here.is_dir() else []
    history = subprocess.run(
        ["git", "-C", str(root), "log", "--all", "--format=", "--name-only", "--", folder],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    for name in names + [PurePosixPath(h).name for h in history]:
        if m := TAKE_FILE.match(name):
            used.append(int(m.group(1)))
    return max(used, default=0) + 1


def _target(task: dict[str, Any]) -> dict[str, str]:
    target = task["params"].get("target") or {}
    found = {k: str(v) for k, v in target.items() if v}
    if not found and task.get("node_id"):
        found = {"node": str(task["node_id"])}
    return found


def _folder(target: dict[str, str]) -> str:
    place = target.get("canvas") or target.get("scene")
    item = target.get("node") or target.get("shot")
    if place and item:
        return f"{folder_name(place)}/{folder_name(item)}"
    return f"unsorted/{folder_name(item)}" if item else "unsorted"


def _suffix(output: Output) -> str:
    suffix = PurePosixPath(output.name).suffix.lower()
    if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix):
        return suffix
    return MEDIA_SUFFIXES.get(output.media_type, ".bin")


def _check(output: Output, root: Path) -> None:
    if output.role == "take":
        return
    prefix = ROLE_FOLDERS.get(output.role)
    dest = PurePosixPath(output.dest)
    if prefix is None or not output.dest.startswith(prefix) or ".." in dest.parts or dest.is_absolute():
        raise Problem(422, f"A task may only write under 06_Exports/ or 05_Cache/ (not '{output.dest}').",
                      errors=[{"field": "manifest", "message": "destination outside the task folders"}])  # fmt: skip
    if not (root / output.dest).resolve().is_relative_to(root.resolve()):
        raise Problem(422, f"'{output.dest}' leads outside the project.")


def _place(root: Path, rel: str, output: Output) -> dict[str, Any]:
    """Write ``output`` to ``root/rel`` whole or not at all; its description."""
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        if output.data is not None:
            tmp.write_bytes(output.data)
        else:
            assert output.source is not None
            shutil.copyfile(output.source, tmp)
        digest, size = hashlib.sha256(), 0
        with open(tmp, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "path": rel,
        "kind": output.media_type,
        "size": size,
        "sha256": digest.hexdigest(),
        "role": output.role,
    }


def _add_takes(doc: Doc[Any], records: dict[str, dict[str, Any]], target: dict[str, str]) -> None:
    with doc.transaction():
        for take_id, record in records.items():
            set_path(doc, ["takes", take_id], record)
        # A new take of a node answers its "stale" mark (its inputs changed since the last one).
        canvas = doc.get("canvases", type=Map).get(target.get("canvas", ""))
        nodes = canvas.get("nodes") if isinstance(canvas, Map) else None
        node = nodes.get(target.get("node", "")) if isinstance(nodes, Map) else None
        if isinstance(node, Map) and "stale" in node:
            del node["stale"]


def _seconds_since(started_at: str | None) -> float:
    if not started_at:
        return 0.0
    return max(0.0, (datetime.now(UTC) - datetime.fromisoformat(started_at)).total_seconds())


# -- the upload route ---------------------------------------------------------------------------


async def require_upload_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the task's upload token, checked before any of the body is read."""
    outputs: Outputs = connection.app.state.outputs
    task_id = str(connection.path_params["task_id"])
    token = bearer_token(connection)
    if not token or not token_ok(outputs.secret, task_id, token):
        raise Problem(401, "This route takes the task's upload token (workers derive it from "
                      "STUDIO_WORKER_SECRET); it is not a sign-in token.",
                      headers={"WWW-Authenticate": "Bearer"})  # fmt: skip


@post(
    "/api/tasks/{task_id:str}/outputs",
    guards=[require_upload_token],
    status_code=HTTP_201_CREATED,
    tags=["tasks"],
    summary="A worker hands back the results of its task (multipart: manifest, file0, file1 …)",
)
async def upload_outputs(
    request: Request[Any, Any, Any], task_id: FromPath[str],
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
) -> dict[str, Any]:  # fmt: skip
    outputs: Outputs = request.app.state.outputs
    try:
        manifest = json.loads(data.get("manifest") or "")
        assert isinstance(manifest, list)
    except (ValueError, AssertionError):
        raise Problem(422, "Send a 'manifest' field: a JSON list with one entry per file "
                      "({name, media_type, role, dest, meta}).") from None  # fmt: skip
    scratch = Path(tempfile.mkdtemp(prefix="studio-upload-"))
    try:
        items: list[Output] = []
        for i, entry in enumerate(manifest):
            upload = data.get(f"file{i}")
            if not isinstance(entry, dict) or not isinstance(upload, UploadFile):
                raise Problem(
                    422, f"The manifest names {len(manifest)} files; file{i} is missing or malformed."
                )
            role = entry.get("role")
            if role not in ("take", "export", "cache"):
                raise Problem(422, f"file{i}: role must be take, export or cache.")
            source = scratch / f"file{i}"
            await asyncio.to_thread(_spool, upload, source)
            items.append(Output(str(entry.get("name") or f"file{i}"), str(entry.get("media_type") or
                                "application/octet-stream"), role, source=source, dest=str(entry.get("dest") or ""),
                                meta=dict(entry.get("meta") or {})))  # fmt: skip
        return {"outputs": await outputs.store(task_id, items)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _spool(upload: UploadFile, target: Path) -> None:
    upload.file.seek(0)
    with open(target, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
