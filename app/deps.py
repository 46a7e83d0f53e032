"""Dependencies handlers ask for by name: ``studio``, ``accounts``, ``projects``, ``user``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler

from app.accounts.service import Accounts, User
from app.problems import Problem
from app.projects.service import Projects
from app.projects.transfer import Transfers
from app.studio import Studio
from sync.builders import Builders
from sync.indexwriter import IndexWriter
from sync.rooms import Rooms
from tasks.store import TaskStore


def _state(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
    """The request's state as the plain dict ``connection.state`` wraps: that property builds a
    new wrapper on every access, which showed in every request's profile."""
    state: dict[str, Any] = connection.scope.setdefault("state", {})
    return state


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


async def authenticate(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook for routes that need a signed-in person: 401 otherwise, before
    the body is read, so nothing is parsed for a stranger.

    A hook rather than a guard: Litestar hands every guard a fresh copy of the route handler,
    which cost a twelfth of a project listing's time. A role guard (:func:`require_role`) that
    ran first has already found the user. Async on purpose: a token lookup is one indexed SQLite
    read, far cheaper than the hop to a worker thread a sync hook would cost on every request."""
    state = _state(request)
    if state.get("user") is None:
        state["user"] = _authenticate(request)


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def require_role(need: str) -> Guard:
    """A guard for routes under ``{project_id}``: the caller must hold at least role ``need``.
    Strangers get the project's 404 and members below ``need`` a 403, before any body is read.
    The project and its folder are left in ``connection.state`` (see :func:`project_path`), so
    a controller guard and a stricter handler guard look the membership up once.

    >>> @post("/", guards=[require_editor])  # doctest: +SKIP
    """

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        from app.projects.access import check_role, project_for

        state = _state(connection)
        user = state.get("user") or _authenticate(connection)
        state["user"] = user
        project_id = str(connection.path_params["project_id"])
        project = state.get("project")
        if project is None or project["id"] != project_id:
            project, rel = project_for(connection.app.state.services.studio.index, user, project_id)
            state["project"], state["project_path"] = project, rel
        check_role(project["role"], need)

    guard.__name__ = f"require_{need}"
    return guard


require_member = require_role("viewer")
require_editor = require_role("editor")
require_owner = require_role("owner")


def project_path(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The project's folder (relative to the workspace), as :func:`require_role` found it."""
    return str(connection.state.project_path)


def provide_user(request: Request[Any, Any, Any]) -> User:
    """The signed-in user (set by :func:`authenticate` or a role guard); 401 when the token is missing or revoked."""
    user: User | None = _state(request).get("user")
    return user if user is not None else _authenticate(request)


def _authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> User:
    token = bearer_token(connection)
    if not token:
        raise Problem(
            401,
            "Sign in first: send 'Authorization: Bearer <token>' (POST /api/auth/guest gives one).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = connection.app.state.services.accounts.authenticate(token)
    if user is None:
        raise Problem(
            401,
            "This token is unknown or was revoked: sign in again.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user  # type: ignore[no-any-return]


def provide_optional_user(request: Request[Any, Any, Any]) -> User | None:
    token = bearer_token(request)
    return request.app.state.services.accounts.authenticate(token) if token else None


@dataclass(frozen=True)
class Services:
    """Everything handlers work with, as one dependency.

    One object rather than one dependency per service: Litestar resolves sibling dependencies
    concurrently in a task group, which cost a tenth of a cheap request's time."""

    studio: Studio
    accounts: Accounts
    projects: Projects
    transfers: Transfers
    rooms: Rooms
    tasks: TaskStore
    builders: Builders
    writer: IndexWriter


def provide_services(request: Request[Any, Any, Any]) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def provide_user_after_services(request: Request[Any, Any, Any], svc: NamedDependency[Services]) -> User:
    return provide_user(request)


def provide_maybe_user(request: Request[Any, Any, Any], svc: NamedDependency[Services]) -> User | None:
    return provide_optional_user(request)


DEPENDENCIES = {
    "svc": Provide(provide_services, sync_to_thread=False),
    # `user` depends on `svc` so the two resolve one after the other, never in a task group.
    "user": Provide(provide_user_after_services, sync_to_thread=False),
    "maybe_user": Provide(provide_maybe_user, sync_to_thread=False),
}


def client_ip(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None
