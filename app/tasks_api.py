"""Task routes: the kinds, enqueueing from a project, status, cancel."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from pydantic import BaseModel, Field, ValidationError

from app.accounts.service import User
from app.deps import Services, authenticate, require_editor, require_member
from app.problems import Problem
from app.projects.access import project_for
from tasks import bench
from tasks.broker import QueueUnavailable
from tasks.kinds import KINDS, TaskKind
from tasks.ledger import event
from tasks.models import find_models
from tasks.store import FINISHED

MAX_WAITING_PER_USER = 20


class TaskIn(BaseModel):
    kind: str = Field(max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    node_id: str | None = Field(None, max_length=200)
    priority: int = Field(0, ge=-10, le=10)


def kinds_for(svc: Services) -> dict[str, TaskKind]:
    """The task kinds people may use here (the bench kind only where benchmarks enabled it)."""
    if svc.studio.settings.bench_tasks:
        return KINDS
    return {name: kind for name, kind in KINDS.items() if name != bench.KIND}


def task_for(svc: Services, user: User, task_id: str, need: str = "viewer") -> dict[str, Any]:
    task = svc.tasks.get(task_id)
    if task is None:
        raise Problem(404, f"There is no task {task_id}.", slug="task-not-found")
    try:
        project_for(svc.studio.index, user, task["project_id"], need)
    except Problem as exc:
        if exc.status_code == 404:
            raise Problem(404, f"There is no task {task_id}.", slug="task-not-found") from None
        raise
    return task


class TaskController(Controller):
    path = "/api"
    tags = ["tasks"]
    before_request = staticmethod(authenticate)

    @get("/task-kinds", sync_to_thread=False)
    def kinds(self, svc: NamedDependency[Services]) -> list[dict[str, Any]]:
        return [
            {"kind": k.kind, "queue": k.queue, "description": k.description,
             "params_schema": k.params.model_json_schema()}
            for k in kinds_for(svc).values()
        ]  # fmt: skip

    @get("/models", sync_to_thread=True)
    def models(self, svc: NamedDependency[Services]) -> list[dict[str, Any]]:
        """The generation models found under STUDIO_MODELS_DIR."""
        return find_models(svc.studio.settings.models_dir)

    @post("/projects/{project_id:uuid}/tasks", status_code=HTTP_202_ACCEPTED, sync_to_thread=False,
          guards=[require_editor])  # fmt: skip
    def enqueue(self, request: Request[Any, Any, Any], project_id: FromPath[UUID], data: JSONBody[TaskIn], user: NamedDependency[User],
                svc: NamedDependency[Services]) -> dict[str, Any]:  # fmt: skip
        pid = str(project_id)
        kind = kinds_for(svc).get(data.kind)
        if kind is None:
            raise Problem(422, f"There is no task kind '{data.kind}'; GET /api/task-kinds lists them.",
                          errors=[{"field": "kind", "message": "unknown kind"}])  # fmt: skip
        try:
            params = kind.params.model_validate(data.params)
        except ValidationError as exc:
            errors = [
                {"field": "params." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ]
            raise Problem(422, "The parameters are invalid — " + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                          errors=errors) from None  # fmt: skip
        waiting = svc.studio.index.db.execute(
            "SELECT COUNT(*) FROM tasks WHERE requester_id = ? AND state IN ('queued', 'running')", [user.id]
        ).fetchone()[0]
        if waiting >= MAX_WAITING_PER_USER:
            raise Problem(429, f"You have {waiting} tasks waiting or running; the limit is {MAX_WAITING_PER_USER}. "
                          "Wait for some to finish or cancel some.", slug="too-many-tasks")  # fmt: skip
        task = svc.tasks.create(project_id=pid, kind=kind.kind, queue=kind.queue, params=params.model_dump(),
                                node_id=data.node_id, requester_id=user.id, priority=data.priority,
                                size_key=kind.size_key(params))  # fmt: skip
        # Announced before it is sent: a worker may start it at once, and its task.running must
        # not reach anyone before its task.queued.
        request.app.state.publish_task(event("queued", task))
        try:
            request.app.state.send_task(task)
        except QueueUnavailable:
            # Refused rather than held: nothing half-made stays behind, and the person knows.
            svc.tasks.discard(task["id"])
            words = ("The task queue (Redis) cannot be reached right now, so the task was not queued. "
                     "Try again in a moment: GET /api/health shows when the queue is back.")  # fmt: skip
            request.app.state.publish_task(event("failed", {**task, "state": "failed", "error": words}))
            raise Problem(503, words, slug="queue-unavailable", headers={"Retry-After": "5"}) from None
        return task

    @get("/projects/{project_id:uuid}/tasks", sync_to_thread=False, guards=[require_member])
    def project_tasks(
        self, project_id: FromPath[UUID], svc: NamedDependency[Services]
    ) -> list[dict[str, Any]]:
        pid = str(project_id)
        rows = svc.studio.index.db.execute(
            "SELECT id FROM tasks WHERE project_id = ? ORDER BY created_at DESC LIMIT 100", [pid]
        ).fetchall()
        return [t for r in rows if (t := svc.tasks.get(r[0])) is not None]

    @get("/tasks/{task_id:str}", sync_to_thread=False)
    def get_task(
        self, task_id: FromPath[str], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> dict[str, Any]:
        return task_for(svc, user, task_id)

    @get("/tasks/{task_id:str}/preview", sync_to_thread=False,
         summary="The latest low-resolution preview of a task (PNG); 404 until it sent one")  # fmt: skip
    def preview(
        self, task_id: FromPath[str], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> Response[bytes]:
        task_for(svc, user, task_id)
        png = svc.tasks.preview(task_id)
        if png is None:
            raise Problem(404, "This task has no preview (yet): previews come from long generations, every "
                          "few steps.", slug="no-preview")  # fmt: skip
        # The task's "preview" URL names the preview's time, so a newer one is a new URL.
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @post("/tasks/{task_id:str}/cancel", status_code=HTTP_200_OK, sync_to_thread=False)
    def cancel(
        self,
        request: Request[Any, Any, Any],
        task_id: FromPath[str],
        user: NamedDependency[User],
        svc: NamedDependency[Services],
    ) -> dict[str, Any]:
        task = task_for(svc, user, task_id, "editor")
        if task["state"] in FINISHED:
            raise Problem(
                409, f"The task has already {task['state']}; there is nothing to cancel.", slug="finished"
            )
        state = svc.tasks.request_cancel(task_id)
        task = svc.tasks.get(task_id) or task
        if state == "cancelled":
            request.app.state.publish_task(event("cancelled", task))
        return task
