"""Webhook routes of a project (owners only): create, list, change, delete, and the delivery log.

The secret that signs deliveries is shown once, in the answer to the create request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from pydantic import BaseModel, Field, field_validator

from app.accounts.service import User
from app.deps import require_owner
from app.problems import Problem
from tasks.webhooks import PATTERNS, WebhookStore


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"use an http:// or https:// URL (got '{parts.scheme or url[:20]}')")
    if not parts.hostname:
        raise ValueError("the URL has no host name")
    if parts.username or parts.password:
        raise ValueError("put no user name or password in the URL; the signature authenticates deliveries")
    try:
        _ = parts.port  # a port out of range raises here
    except ValueError:
        raise ValueError("the URL's port is not a number between 1 and 65535") from None
    return url.strip()


def _check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in PATTERNS]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}; choose from {', '.join(PATTERNS)}")
    return sorted(set(events), key=events.index)


class WebhookIn(BaseModel):
    url: str = Field(min_length=1, max_length=2000, description="Where to POST the events (http or https).")
    events: list[str] = Field(
        default_factory=lambda: ["task.*", "commit"], min_length=1, max_length=len(PATTERNS),
        description="Which events: task.queued, task.running, task.retrying, task.succeeded, task.failed, "
        "task.cancelled, task.* (all of those), commit, or *.",
    )  # fmt: skip

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        return _check_events(value)


class WebhookPatch(BaseModel):
    url: str | None = Field(None, min_length=1, max_length=2000)
    events: list[str] | None = Field(None, min_length=1, max_length=len(PATTERNS))
    active: bool | None = Field(None, description="false pauses deliveries without deleting the webhook.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_events(value)


def _hooks(request: Request[Any, Any, Any]) -> WebhookStore:
    return request.app.state.webhooks  # type: ignore[no-any-return]


def _hook(request: Request[Any, Any, Any], project_id: str, webhook_id: str) -> dict[str, Any]:
    hook = _hooks(request).get(project_id, webhook_id)
    if hook is None:
        raise Problem(404, f"This project has no webhook {webhook_id}.", slug="webhook-not-found")
    return hook


class WebhookController(Controller):
    path = "/api/projects/{project_id:uuid}/webhooks"
    tags = ["webhooks"]
    # Owners only: strangers get the project's 404 and other members a 403, before any body is read.
    guards = [require_owner]  # it signs the caller in too

    @post("/", status_code=HTTP_201_CREATED, sync_to_thread=False)
    def create(self, request: Request[Any, Any, Any], project_id: FromPath[UUID], data: JSONBody[WebhookIn],
               user: NamedDependency[User]) -> dict[str, Any]:  # fmt: skip
        """A webhook; the answer holds its ``secret``, shown this once: keep it to check signatures."""
        return _hooks(request).create(str(project_id), data.url, data.events, user.id)

    @get("/", sync_to_thread=False)
    def list_hooks(self, request: Request[Any, Any, Any], project_id: FromPath[UUID]) -> list[dict[str, Any]]:
        return _hooks(request).of_project(str(project_id))

    @get("/{webhook_id:str}", sync_to_thread=False)
    def get_hook(
        self, request: Request[Any, Any, Any], project_id: FromPath[UUID], webhook_id: FromPath[str]
    ) -> dict[str, Any]:
        return _hook(request, str(project_id), webhook_id)

    @patch("/{webhook_id:str}", sync_to_thread=False)
    def change(self, request: Request[Any, Any, Any], project_id: FromPath[UUID], webhook_id: FromPath[str],
               data: JSONBody[WebhookPatch]) -> dict[str, Any]:  # fmt: skip
        _hook(request, str(project_id), webhook_id)
        fields = data.model_dump(exclude_none=True)
        hook = _hooks(request).update(str(project_id), webhook_id, **fields)
        assert hook is not None
        return hook

    @delete("/{webhook_id:str}", status_code=HTTP_204_NO_CONTENT, sync_to_thread=False)
    def remove(
        self, request: Request[Any, Any, Any], project_id: FromPath[UUID], webhook_id: FromPath[str]
    ) -> None:
        if not _hooks(request).delete(str(project_id), webhook_id):
            raise Problem(404, f"This project has no webhook {webhook_id}.", slug="webhook-not-found")

    @get("/{webhook_id:str}/deliveries", sync_to_thread=False)
    def deliveries(self, request: Request[Any, Any, Any], project_id: FromPath[UUID], webhook_id: FromPath[str],
                   limit: FromQuery[int] = 100) -> list[dict[str, Any]]:  # fmt: skip
        """Every attempt to deliver, newest first: status code, attempt, duration, error."""
        _hook(request, str(project_id), webhook_id)
        return _hooks(request).deliveries(webhook_id, max(1, min(limit, 1000)))
