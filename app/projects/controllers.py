"""Project routes. Controllers parse and answer; the services do the work and check roles."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from typing import Annotated, Any, Literal, cast
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody, Parameter
from litestar.response import File
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from pydantic import BaseModel, Field

from app.accounts.service import User
from app.deps import Services, authenticate, project_path, require_editor, require_owner
from app.problems import Problem
from app.projects.access import ProjectListOut, ProjectOut, project_for
from sync import repo
from sync.docmodel import apply_state, doc_to_state, set_meta, set_path
from sync.model import InvalidProjectFile, read_state
from sync.preview import preview_png


class ProjectIn(BaseModel):
    name: str = Field(max_length=1000)
    template: str = Field("blank", max_length=64)
    id: UUID | None = None
    description: str = Field("", max_length=5000)


class ProjectPatch(BaseModel):
    name: str | None = Field(None, max_length=1000)
    description: str | None = Field(None, max_length=5000)
    archived: bool | None = None


class BulkIn(BaseModel):
    action: Literal["archive", "unarchive", "delete", "export"]
    ids: list[UUID] = Field(min_length=1, max_length=500)


class MemberIn(BaseModel):
    email: str = Field(max_length=254)
    role: Literal["owner", "editor", "viewer"]


def _file(path: Any, filename: str, media_type: str) -> File:
    return File(
        path,
        filename=filename,
        media_type=media_type,
        background=BackgroundTask(lambda: path.unlink(missing_ok=True)),
    )


def _json(body: bytes) -> Response[Any]:
    """An answer already encoded as JSON (the read cache's); the route's annotation documents it."""
    return Response(body, media_type=MediaType.JSON)


async def trash(svc: Services, user: User, project_id: str) -> None:
    """Trash a project: its live room commits what it holds and closes its peers (4404) first, so no
    late write lands in a folder that has moved."""
    project_for(svc.studio.index, user, project_id, "owner")
    await svc.rooms.evict(project_id)
    await asyncio.to_thread(svc.projects.delete, user, project_id)


class ProjectController(Controller):
    path = "/api/projects"
    tags = ["projects"]
    before_request = staticmethod(authenticate)

    @post("/", status_code=HTTP_201_CREATED)
    async def create(
        self, data: JSONBody[ProjectIn], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> ProjectOut:
        project, _ = await svc.projects.create_async(
            svc.builders,
            svc.writer,
            user,
            data.name,
            data.template,
            str(data.id) if data.id else None,
            data.description,
        )
        return cast("ProjectOut", project)

    @get("/", sync_to_thread=False)
    def list_projects(
        self,
        user: NamedDependency[User],
        svc: NamedDependency[Services],
        q: Annotated[str, Parameter(max_length=200)] = "",
        template: FromQuery[str | None] = None,
        archived: Annotated[str | None, Parameter(description="false (default), true or all")] = None,
        updated_since: FromQuery[str | None] = None,
        sort: Annotated[
            str, Parameter(description="name, updated or created; '-' prefix for descending")
        ] = "-updated",
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> Response[ProjectListOut]:
        found = svc.projects.search_json(
            user, q=q, template=template, archived=archived, updated_since=updated_since, sort=sort,
            limit=limit, offset=offset,
        )  # fmt: skip
        return _json(found)

    @get("/trash", sync_to_thread=False, summary="Projects in the trash, restorable until purge_at")
    def trash(self, user: NamedDependency[User], svc: NamedDependency[Services]) -> list[dict[str, Any]]:
        return svc.projects.trash(user)

    @post("/bulk", status_code=HTTP_200_OK)
    async def bulk(
        self, data: JSONBody[BulkIn], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> Any:
        ids = [str(i) for i in data.ids]
        if data.action == "export":
            path, name = await asyncio.to_thread(svc.transfers.export_many, user, ids)
            return _file(path, name, "application/zip")
        results = []
        for pid in ids:
            try:
                if data.action == "delete":
                    await trash(svc, user, pid)
                else:
                    await asyncio.to_thread(
                        svc.projects.update, user, pid, {"archived": data.action == "archive"}
                    )
                results.append({"id": pid, "ok": True, "status": 200})
            except Problem as exc:
                results.append({"id": pid, "ok": False, "status": exc.status_code, "detail": exc.detail})
        return {"action": data.action, "results": results}

    @post(
        "/import",
        sync_to_thread=True,
        status_code=HTTP_201_CREATED,
        summary="Import an exported git bundle or zip as a new project",
    )
    def import_project(
        self,
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
        user: NamedDependency[User],
        svc: NamedDependency[Services],
    ) -> dict[str, Any]:
        upload = data.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(
                422,
                "Send the exported file as the multipart field 'file'.",
                errors=[{"field": "file", "message": "missing"}],
            )
        dest = svc.transfers.temp_path(".upload")
        try:
            with open(dest, "wb") as out:
                shutil.copyfileobj(upload.file, out)
            name = data.get("name")
            return svc.transfers.import_file(user, dest, name if isinstance(name, str) else None)
        finally:
            dest.unlink(missing_ok=True)

    @get("/{project_id:uuid}", sync_to_thread=False)
    def get_project(
        self, project_id: FromPath[UUID], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> Response[ProjectOut]:
        return _json(svc.projects.get_json(user, str(project_id)))

    @patch("/{project_id:uuid}")
    async def update(
        self,
        project_id: FromPath[UUID],
        data: JSONBody[ProjectPatch],
        user: NamedDependency[User],
        svc: NamedDependency[Services],
    ) -> dict[str, Any]:
        pid, changes = str(project_id), data.model_dump(exclude_unset=True)
        meta = svc.projects.meta_changes(user, pid, changes)
        if meta:
            # Through the live document, so editors see it and the next commit keeps it.
            room = await svc.rooms.get(pid)
            room.apply_local(user.id, lambda doc: set_meta(doc, meta))
            await svc.rooms.flush(pid)
        return await asyncio.to_thread(svc.projects.update, user, pid, changes)

    @delete(
        "/{project_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Move the project to the trash (restorable for 30 days)",
    )
    async def delete_project(
        self, project_id: FromPath[UUID], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> None:
        await trash(svc, user, str(project_id))

    @post("/{project_id:uuid}/restore", sync_to_thread=True, status_code=HTTP_200_OK)
    def restore(
        self, project_id: FromPath[UUID], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> dict[str, Any]:
        return svc.projects.restore(user, str(project_id))

    @get("/{project_id:uuid}/export", sync_to_thread=True)
    def export(
        self,
        project_id: FromPath[UUID],
        user: NamedDependency[User],
        svc: NamedDependency[Services],
        format: FromQuery[Literal["bundle", "zip"]] = "bundle",
    ) -> File:
        path, name = svc.transfers.export(user, str(project_id), format)
        return _file(path, name, "application/zip" if format == "zip" else "application/x-git-bundle")

    @post("/{project_id:uuid}/history/{sha:str}/restore", status_code=HTTP_200_OK, guards=[require_editor],
          summary="Make a past version the current state, as a new change every client receives")  # fmt: skip
    async def restore_version(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[UUID],
        sha: FromPath[str],
        user: NamedDependency[User],
        svc: NamedDependency[Services],
    ) -> dict[str, Any]:
        pid, rel = str(project_id), project_path(request)
        if not re.fullmatch(r"[0-9a-f]{4,40}", sha):
            raise Problem(422, "A version is named by its commit sha (hexadecimal), as /history lists it.")
        root = svc.projects.root(rel)
        try:
            state = await asyncio.to_thread(lambda: read_state(repo.reader_at(root, sha)))
        except KeyError:
            raise Problem(404, f"This project has no version {sha}.", slug="no-such-version") from None
        except InvalidProjectFile as exc:
            raise Problem(422, f"Version {sha[:7]} cannot be restored: {exc}", slug="bad-version") from None
        state["meta"]["uuid"] = pid
        room = await svc.rooms.get(pid)
        changed = room.apply_local(user.id, lambda doc: apply_state(doc, state))
        commit = await svc.rooms.flush(pid, note=f"Restore version {sha[:7]}")
        return {"restored": sha, "changed": changed, "commit": commit}

    @post("/{project_id:uuid}/activity/{activity_id:int}/restore", status_code=HTTP_200_OK, guards=[require_editor],
          summary="Put back the value that lost a conflict (one step)")  # fmt: skip
    async def restore_conflict(
        self,
        project_id: FromPath[UUID],
        activity_id: FromPath[int],
        user: NamedDependency[User],
        svc: NamedDependency[Services],
    ) -> dict[str, Any]:
        pid = str(project_id)
        row = svc.studio.index.db.execute(
            "SELECT detail FROM activity WHERE id = ? AND project_id = ? AND kind = 'conflict'",
            [activity_id, pid],
        ).fetchone()
        if row is None:
            raise Problem(404, "There is no conflict with this id in the project's activity.")
        detail = json.loads(row[0])
        room = await svc.rooms.get(pid)
        try:
            changed = room.apply_local(user.id, lambda doc: set_path(doc, detail["path"], detail["lost"]))
        except ValueError as exc:
            raise Problem(422, str(exc)) from None
        return {"restored": detail["path"], "value": detail["lost"], "changed": changed}

    @get("/{project_id:uuid}/history", sync_to_thread=True)
    def history(
        self, project_id: FromPath[UUID], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> list[dict[str, Any]]:
        return svc.projects.history(user, str(project_id))

    @get("/{project_id:uuid}/activity", sync_to_thread=False)
    def activity(
        self, project_id: FromPath[UUID], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> list[dict[str, Any]]:
        return svc.projects.activity(user, str(project_id))

    @get("/{project_id:uuid}/state", summary="The project document as plain JSON")
    async def state(
        self, project_id: FromPath[UUID], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> dict[str, Any]:
        pid = str(project_id)
        room = svc.rooms.rooms.get(pid)
        if room is None:  # nobody is editing it: the files are the current state
            return await asyncio.to_thread(svc.projects.state, user, pid)
        # Someone is: the live document is ahead of the files by up to the materializer's delay.
        project_for(svc.studio.index, user, pid)
        return doc_to_state(room.doc)

    @get("/{project_id:uuid}/preview", sync_to_thread=True, media_type="image/png")
    def preview(
        self, project_id: FromPath[UUID], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> Response[bytes]:
        project, rel = project_for(svc.projects.index, user, str(project_id))
        data = preview_png(svc.projects.root(rel), project["name"], project["id"])
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})

    @get("/{project_id:uuid}/members", sync_to_thread=False)
    def members(
        self, project_id: FromPath[UUID], user: NamedDependency[User], svc: NamedDependency[Services]
    ) -> list[dict[str, Any]]:
        return svc.projects.members(user, str(project_id))

    @post("/{project_id:uuid}/members", status_code=HTTP_200_OK, guards=[require_owner])
    async def add_member(
        self,
        project_id: FromPath[UUID],
        data: JSONBody[MemberIn],
        user: NamedDependency[User],
        svc: NamedDependency[Services],
    ) -> dict[str, Any]:
        member = svc.accounts.find_by_email(data.email)
        if member is None:
            raise Problem(
                404,
                f"No one has an account with the email {data.email}: ask them to register first.",
                slug="no-such-account",
            )
        done = await asyncio.to_thread(svc.projects.set_member, user, str(project_id), member, data.role)
        svc.rooms.reauthorise(str(project_id))  # their open sockets take the new role at once
        return done

    @delete("/{project_id:uuid}/members/{member_id:str}", status_code=HTTP_204_NO_CONTENT)
    async def remove_member(
        self,
        project_id: FromPath[UUID],
        member_id: FromPath[str],
        user: NamedDependency[User],
        svc: NamedDependency[Services],
    ) -> None:
        await asyncio.to_thread(svc.projects.remove_member, user, str(project_id), member_id)
        svc.rooms.reauthorise(str(project_id))  # their open sockets close (4403)
