"""RFC 9457 problem details for every error the API returns.

Every exception becomes ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and the request id; unexpected exceptions are logged with their stack trace and
answered with a 500 that says only that something failed and which request it was.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    SerializationException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.logs import get_logger

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://studio.invalid/problems/"
log = get_logger("app.problems")

_TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid",
    429: "rate-limited",
    500: "internal",
    503: "unavailable",
}


class Problem(HTTPException):
    """An error to answer with a problem detail: ``raise Problem(409, "The project is archived.")``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        slug: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail=detail, status_code=status, headers=headers)
        self.title = title or _TITLES.get(status, "Error")
        self.slug = slug or _SLUGS.get(status, "error")
        self.fields = extra


def problem_response(
    request: Request[Any, Any, Any] | None,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    """The problem-details response itself (also used by middleware that has no exception)."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or _SLUGS.get(status, "error")),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        rid = request.scope.get("state", {}).get("request_id") or structlog.contextvars.get_contextvars().get(
            "request_id"
        )
        if rid:
            body["request_id"] = rid
    body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The app's one exception handler: every exception becomes a problem detail."""
    if isinstance(exc, Problem):
        return problem_response(
            request,
            exc.status_code,
            exc.detail,
            title=exc.title,
            slug=exc.slug,
            headers=exc.headers,
            **exc.fields,
        )
    if isinstance(exc, ValidationException):
        return _validation_problem(request, exc)
    if isinstance(exc, HTTPException):
        detail = _too_large(request) if exc.status_code == 413 else _http_detail(exc)
        return problem_response(request, exc.status_code, detail, headers=exc.headers)
    log.error("unhandled_exception", path=request.url.path, exc_info=exc)
    return problem_response(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Something went wrong on the server. It has been logged; quote the request id if you report it.",
    )


def _http_detail(exc: HTTPException) -> str:
    if isinstance(exc, NotFoundException) and exc.detail in ("Not Found", ""):
        return "There is nothing at this address."
    if isinstance(exc, NotAuthorizedException) and exc.detail in ("Unauthorized", ""):
        return "Sign in first: send 'Authorization: Bearer <token>'."
    if isinstance(exc, PermissionDeniedException) and exc.detail in ("Forbidden", ""):
        return "Your role does not allow this."
    if exc.status_code == 405:
        return "This address does not accept that method."
    if exc.status_code == 400 and isinstance(exc.__cause__, SerializationException):
        return "The request body is not valid JSON: " + str(exc.__cause__).removeprefix("JSON is malformed: ")
    if exc.status_code == 413:
        return "The request body is larger than this server accepts."
    return str(exc.detail)


def _too_large(request: Request[Any, Any, Any]) -> str:
    """The 413 detail, with the limit of the route that refused (uploads take far more than JSON)."""
    try:
        limit = request.route_handler.resolve_request_max_body_size()
    except Exception:  # no route resolved: the generic words
        limit = None
    if not limit:
        return "The request body is larger than this server accepts."
    size = next(f"{limit / 1024**n:.1f}".removesuffix(".0") + f" {unit}"
                for n, unit in ((3, "GB"), (2, "MB"), (1, "KB"), (0, "bytes")) if limit >= 1024**n)  # fmt: skip
    return f"The request body is larger than this server accepts (at most {size})."


def _validation_problem(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    detail = str(exc.detail)
    if "JSON" in detail or "decode" in detail.lower() or "Malformed" in detail:
        return problem_response(request, 400, "The request body is not valid JSON.", slug="malformed-json")
    errors = [
        {"field": str(e.get("key", "")).removeprefix("body.") or "body", "message": str(e.get("message", ""))}
        for e in extra
        if isinstance(e, dict)
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or detail
    return problem_response(request, 422, f"The request is invalid — {summary}", errors=errors)
