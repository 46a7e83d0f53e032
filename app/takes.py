"""Takes: the numbered results of generations (``app.outputs`` stores them), listed from the doc's
``takes`` map and served to project members with ETag and Range."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Response

from app.assets import file_within, live_entry
from app.deps import Services, require_member
from app.media import file_response
from app.problems import Problem
from sync.docmodel import read_root

TARGET_KEYS = ("canvas", "node", "scene", "shot")


class TakeController(Controller):
    path = "/api/projects/{project_id:uuid}/takes"
    tags = ["takes"]
    guards = [require_member]  # it signs the caller in too

    @get("/")
    async def list_takes(
        self, project_id: FromPath[UUID], svc: NamedDependency[Services], canvas: FromQuery[str | None] = None, node: FromQuery[str | None] = None,
        scene: FromQuery[str | None] = None, shot: FromQuery[str | None] = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """The project's takes, newest first; ``?canvas=&node=`` or ``?scene=&shot=`` narrow them."""
        pid = str(project_id)
        room = await svc.rooms.get(pid)
        wanted = {k: v for k, v in zip(TARGET_KEYS, (canvas, node, scene, shot), strict=True) if v}
        takes = [
            {"id": take_id, **take, "url": f"/api/projects/{pid}/takes/{take_id}/file"}
            for take_id, take in read_root(room.doc, "takes").items()
            if isinstance(take, dict) and all(take.get(k) == v for k, v in wanted.items())
        ]
        return sorted(takes, key=lambda t: (str(t.get("created", "")), t["id"]), reverse=True)

    @get("/{take_id:str}/file")
    async def take_file(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[UUID],
        take_id: FromPath[str],
        svc: NamedDependency[Services],
    ) -> Response[Any]:
        """The take's file; ``Range: bytes=a-b`` for seeking in video, ``If-None-Match`` for caches."""
        root, take = await live_entry(request, svc, str(project_id), "takes", take_id)
        path = file_within(root, take["path"]) if take and take.get("path") else None
        if take is None or path is None:
            raise Problem(404, "There is no such take in this project.", slug="take-not-found")
        etag = f'"{take.get("sha256") or path.stat().st_mtime_ns}"'
        return file_response(request, path, etag=etag, filename=path.name)
