"""The worker API: what a ``studio worker`` on any machine reads and writes, over HTTP.

A worker started with ``STUDIO_BROKER_URL``, ``STUDIO_SERVER_URL`` and ``STUDIO_WORKER_SECRET``
needs nothing else: it takes a turn from the broker, then through these routes claims the next
task, reports progress and previews (and learns of a cancel in the answer), fetches what the
task reads of its project, and says how the task ended. The server writes the task row and
publishes the event, through the same :class:`~tasks.ledger.LocalLedger` its in-process workers
use, so ``/events`` and webhooks see it at once. Results go back through
``POST /api/tasks/{id}/outputs`` (``app.outputs``).

Every route needs ``X-Studio-Worker: <token>``, ``HMAC-SHA256(STUDIO_WORKER_SECRET,
"studio-worker-api")`` in hex (``tasks.remote.worker_token``), compared in constant time; a
project's files are served only for a task of it that is running.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body, FromPath, JSONBody
from litestar.response import File, Stream
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from pydantic import BaseModel, Field

from app.deps import Services
from app.problems import Problem
from sync.workspace import tree_files
from tasks.ledger import LocalLedger
from tasks.project_files import LocalProject, safe_rel, tar_stream
from tasks.remote import WORKER_HEADER

MAX_PREVIEW_BYTES = 1 << 20


async def require_worker(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the worker token, checked before any of the body is read."""
    token = connection.headers.get(WORKER_HEADER.lower(), "")
    if not connection.app.state.worker_token.accepts(token):
        raise Problem(401, f"This route is for studio workers: send '{WORKER_HEADER}: <token>', the token "
                      "derived from STUDIO_WORKER_SECRET (tasks/remote.py). The worker's STUDIO_WORKER_SECRET "
                      "must be the server's.", slug="worker-not-recognised")  # fmt: skip


class ClaimIn(BaseModel):
    queue: Literal["gpu", "cpu"]
    worker: str = Field(
        "", max_length=200, description="Who runs it (host:pid), for the error if it goes silent."
    )


class HeartbeatIn(BaseModel):
    tasks: list[str] = Field(default_factory=list, max_length=1000)


class ProgressIn(BaseModel):
    progress: float = Field(ge=0, le=1)


class FinishIn(BaseModel):
    attempt: int = Field(ge=1)
    state: Literal["succeeded", "failed", "cancelled"]
    error: str | None = Field(None, max_length=4000)
    outputs: list[dict[str, Any]] = Field(default_factory=list, max_length=64)


class RetryIn(BaseModel):
    attempt: int = Field(ge=1)
    delay_s: float = Field(ge=0, le=24 * 3600)
    error: str = Field(max_length=4000)


class DeliveryIn(BaseModel):
    event_id: str = Field(max_length=100)
    event_type: str = Field(max_length=100)
    attempt: int = Field(ge=0)
    status_code: int | None = None
    duration_ms: float | None = None
    error: str | None = Field(None, max_length=1000)
    will_retry: bool = False


def _ledger(request: Request[Any, Any, Any]) -> LocalLedger:
    ledger: LocalLedger = request.app.state.ledger
    return ledger


def _no_task(task_id: str) -> Problem:
    return Problem(404, f"There is no task {task_id}.", slug="task-not-found")


def _task(svc: Services, task_id: str) -> dict[str, Any]:
    task = svc.tasks.get(task_id)
    if task is None:
        raise _no_task(task_id)
    return task


def _ended(svc: Services, task_id: str, ended: bool) -> dict[str, bool]:
    """The answer to an attempt's end: a task that is not there is a 404, not ``ended: false``."""
    if not ended and not svc.tasks.exists(task_id):
        raise _no_task(task_id)
    return {"ended": ended}


def _running_project(svc: Services, task_id: str) -> LocalProject:
    """The project files of a running task: a worker reads only what its task works from."""
    task = _task(svc, task_id)
    if task["state"] != "running":
        raise Problem(409, f"The task is {task['state']}; its project is served to its worker only while it runs.",
                      slug="task-not-running")  # fmt: skip
    root = svc.rooms.project_root(task["project_id"])
    if root is None:
        raise Problem(
            404, "The project of this task no longer exists (it was deleted).", slug="project-not-found"
        )
    return LocalProject(root)


class WorkerController(Controller):
    path = "/api/worker"
    tags = ["worker"]
    guards = [require_worker]

    @get("/hello", sync_to_thread=False, summary="A worker checks that the server accepts its secret")
    def hello(self) -> dict[str, str]:
        return {"status": "ok"}

    @post("/claim", status_code=HTTP_200_OK, sync_to_thread=True,
          summary="Start the next task of a queue (null when none waits; a cancelled one never starts)")  # fmt: skip
    def claim(self, request: Request[Any, Any, Any], data: JSONBody[ClaimIn],
              svc: NamedDependency[Services]) -> dict[str, Any]:  # fmt: skip
        task = _ledger(request).claim(data.queue, data.worker)
        root = svc.rooms.project_root(task["project_id"]) if task is not None else None
        return {"task": task, "project_folder": root.name if root is not None else None}

    @post("/heartbeat", status_code=HTTP_200_OK, sync_to_thread=True,
          summary="The worker is alive and running these tasks; answers which of them were cancelled")  # fmt: skip
    def heartbeat(self, request: Request[Any, Any, Any], data: JSONBody[HeartbeatIn],
                  svc: NamedDependency[Services]) -> dict[str, Any]:  # fmt: skip
        _ledger(request).heartbeat(data.tasks)
        return {"cancel_requested": [t for t in data.tasks if svc.tasks.cancel_requested(t)]}

    @get("/tasks/{task_id:str}", sync_to_thread=False, summary="The task row (cancel_requested among it)")
    def task(self, task_id: FromPath[str], svc: NamedDependency[Services]) -> dict[str, Any]:
        return _task(svc, task_id)

    @post("/tasks/{task_id:str}/progress", status_code=HTTP_200_OK, sync_to_thread=True,
          summary="How far the task is (0..1); announced as task.progress")  # fmt: skip
    def progress(self, request: Request[Any, Any, Any], task_id: FromPath[str], data: JSONBody[ProgressIn],
                 svc: NamedDependency[Services]) -> dict[str, Any]:  # fmt: skip
        task = _ledger(request).progress(task_id, data.progress)
        if task is None:
            raise _no_task(task_id)
        return {"cancel_requested": task["cancel_requested"]}

    @post("/tasks/{task_id:str}/preview", status_code=HTTP_200_OK,
          summary="The task's latest low-resolution preview (the body: a PNG); announced as task.preview")  # fmt: skip
    async def preview(self, request: Request[Any, Any, Any], task_id: FromPath[str],
                      svc: NamedDependency[Services]) -> dict[str, Any]:  # fmt: skip
        png = await request.body()
        if not png.startswith(b"\x89PNG") or len(png) > MAX_PREVIEW_BYTES:
            raise Problem(422, f"Send the preview as the body, a PNG of at most {MAX_PREVIEW_BYTES} bytes.")
        task = await asyncio.to_thread(_ledger(request).preview, task_id, png)
        if task is None:  # not running any more (then its cancel, if any, is decided), or none at all
            return {"cancel_requested": _task(svc, task_id)["cancel_requested"]}
        return {"cancel_requested": task["cancel_requested"]}

    @post("/tasks/{task_id:str}/finish", status_code=HTTP_200_OK, sync_to_thread=True,
          summary="How an attempt ended; ended=false when it was given up for dead meanwhile")  # fmt: skip
    def finish(self, request: Request[Any, Any, Any], task_id: FromPath[str], data: JSONBody[FinishIn],
               svc: NamedDependency[Services]) -> dict[str, Any]:  # fmt: skip
        ended = _ledger(request).finish(
            task_id, data.attempt, data.state, error=data.error, outputs=data.outputs
        )
        return _ended(svc, task_id, ended)

    @post("/tasks/{task_id:str}/retry", status_code=HTTP_200_OK, sync_to_thread=True,
          summary="A transient failure: the task goes back to its queue for another attempt later")  # fmt: skip
    def retry(self, request: Request[Any, Any, Any], task_id: FromPath[str], data: JSONBody[RetryIn],
              svc: NamedDependency[Services]) -> dict[str, Any]:  # fmt: skip
        return _ended(
            svc, task_id, _ledger(request).retry_later(task_id, data.attempt, data.delay_s, data.error)
        )

    @get("/tasks/{task_id:str}/state", sync_to_thread=True, summary="The project document of a running task")
    def state(self, task_id: FromPath[str], svc: NamedDependency[Services]) -> dict[str, Any]:
        return _running_project(svc, task_id).state()

    @get("/tasks/{task_id:str}/files/{path:path}", sync_to_thread=True,
         summary="One file of the project of a running task")  # fmt: skip
    def file(self, task_id: FromPath[str], path: FromPath[str], svc: NamedDependency[Services]) -> File:
        rel = safe_rel(path.lstrip("/"))
        found = _running_project(svc, task_id).file(rel) if rel else None
        if found is None:
            raise Problem(
                404, f"There is no file '{path.lstrip('/')}' in this task's project.", slug="file-not-found"
            )
        return File(found, filename=found.name, content_disposition_type="inline")

    @get("/tasks/{task_id:str}/tree", sync_to_thread=True,
         summary="Every file an export holds, as a tar stream (X-Studio-Files: how many)")  # fmt: skip
    def tree(self, task_id: FromPath[str], svc: NamedDependency[Services]) -> Stream:
        project = _running_project(svc, task_id)
        files = tree_files(project.root)
        return Stream(tar_stream(project.root, files), media_type="application/x-tar",
                      headers={"X-Studio-Files": str(len(files))})  # fmt: skip

    @get("/tasks/{task_id:str}/bundle", sync_to_thread=True,
         summary="A git bundle of the repository of a running task's project")  # fmt: skip
    def bundle(self, task_id: FromPath[str], svc: NamedDependency[Services]) -> File:
        project = _running_project(svc, task_id)
        folder = Path(tempfile.mkdtemp(prefix="studio-bundle-"))
        dest = folder / f"{project.name}.bundle"
        project.bundle(dest)
        return File(dest, filename=dest.name, media_type="application/x-git-bundle",
                    background=BackgroundTask(_remove, folder))  # fmt: skip

    @get("/webhooks/{hook_id:str}", sync_to_thread=False,
         summary="Where a webhook delivery goes, and the secret it is signed with (404: deleted or paused)")  # fmt: skip
    def webhook(self, request: Request[Any, Any, Any], hook_id: FromPath[str]) -> dict[str, str]:
        target = request.app.state.webhooks.target(hook_id)
        if target is None:
            raise Problem(404, f"There is no active webhook {hook_id}.", slug="webhook-not-found")
        return {"url": target[0], "secret": target[1]}

    @post("/webhooks/{hook_id:str}/deliveries", status_code=HTTP_204_NO_CONTENT, sync_to_thread=False,
          summary="One delivery attempt, for the webhook's delivery log")  # fmt: skip
    def delivery(self, request: Request[Any, Any, Any], hook_id: FromPath[str],
                 data: Annotated[DeliveryIn, Body()]) -> None:  # fmt: skip
        request.app.state.webhooks.record(hook_id, data.event_id, data.event_type, data.attempt,
                                          status_code=data.status_code, duration_ms=data.duration_ms,
                                          error=data.error, will_retry=data.will_retry)  # fmt: skip


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
