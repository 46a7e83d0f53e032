"""Dependencies handlers ask for by name: ``studio``, ``accounts``, ``projects``, ``user``."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler

from app.accounts.service import Accounts, User
from app.problems import Problem
from app.projects.service import Projects
from app.projects.transfer import Transfers
from app.studio import Studio


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def require_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: authenticate before the body is read, so nothing is parsed for a stranger."""
    connection.state.user = _authenticate(connection)


def provide_user(request: Request[Any, Any, Any]) -> User:
    """The signed-in user (set by :func:`require_user`); 401 when the token is missing or revoked."""
    user: User | None = getattr(request.state, "user", None)
    return user if user is not None else _authenticate(request)


def _authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> User:
    token = bearer_token(connection)
    if not token:
        raise Problem(
            401,
            "Sign in first: send 'Authorization: Bearer <token>' (POST /api/auth/guest gives one).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = connection.app.state.accounts.authenticate(token)
    if user is None:
        raise Problem(
            401,
            "This token is unknown or was revoked: sign in again.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user  # type: ignore[no-any-return]


def provide_optional_user(request: Request[Any, Any, Any]) -> User | None:
    token = bearer_token(request)
    return request.app.state.accounts.authenticate(token) if token else None


def provide_studio(request: Request[Any, Any, Any]) -> Studio:
    return request.app.state.studio  # type: ignore[no-any-return]


def provide_accounts(request: Request[Any, Any, Any]) -> Accounts:
    return request.app.state.accounts  # type: ignore[no-any-return]


def provide_projects(request: Request[Any, Any, Any]) -> Projects:
    return request.app.state.projects  # type: ignore[no-any-return]


def provide_transfers(request: Request[Any, Any, Any]) -> Transfers:
    return request.app.state.transfers  # type: ignore[no-any-return]


DEPENDENCIES = {
    "user": Provide(provide_user, sync_to_thread=False),
    "maybe_user": Provide(provide_optional_user, sync_to_thread=False),
    "studio": Provide(provide_studio, sync_to_thread=False),
    "accounts": Provide(provide_accounts, sync_to_thread=False),
    "projects": Provide(provide_projects, sync_to_thread=False),
    "transfers": Provide(provide_transfers, sync_to_thread=False),
}


def client_ip(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None
