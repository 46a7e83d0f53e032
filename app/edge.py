"""The ASGI layer every request passes first: request id, allowed hosts, rate limits, security
headers and the access log.

It runs outside Litestar's routing so that it also guards WebSockets and static files, and so a
refused request costs almost nothing. Refusals are problem details like every other error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import access_log, redact_query
from app.problems import PROBLEM_JSON, TYPE_BASE

_VALID_RID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
RAW_SEND = "edge.raw_send"  # scope["state"] key: a WebSocket's ASGI send, unwrapped
AUTH_PATHS = ("/api/auth/login", "/api/auth/register", "/api/auth/guest")


_RID_PREFIX = secrets.token_hex(4)
_rid_counter = itertools.count(1)


def next_request_id() -> str:
    """A request id unique across restarts (random per process) and cheap (a counter within it)."""
    return f"{_RID_PREFIX}{next(_rid_counter):08x}"


class TokenBuckets:
    """Token buckets by key: ``rate`` tokens a second, holding at most ``burst``.

    >>> b = TokenBuckets(rate=1, burst=2); b.take("k", now=0.0), b.take("k", now=0.0), b.take("k", now=0.0)
    (0.0, 0.0, 1.0)
    """

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token for ``key``; return 0 if allowed, else the seconds until one is free."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._forget_full(now)
        return 0.0 if allowed else (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        # A bucket idle for burst/rate seconds is full again: the same as one never seen.
        horizon = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < horizon}


# What a running task reports many times a second: logged at DEBUG, not in every INFO log.
_ROUTINE_WORKER_CALLS = ("/progress", "/preview", "/heartbeat")


def _routine(path: str, status: int) -> bool:
    return status < 400 and path.startswith("/api/worker/") and path.endswith(_ROUTINE_WORKER_CALLS)


class EdgeMiddleware:
    """See the module docstring. ``host_allowed`` decides on the Host header (port stripped)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host_allowed: Callable[[str], bool],
        csp: str,
        rate_user: float,
        rate_ip: float,
        rate_auth: float,
        trusted_header: str = "",
        trusted: Callable[[str], bool] = lambda value: False,
    ) -> None:
        self.app = app
        self.host_allowed = host_allowed
        # Requests that pass the rate limits: the studio's own workers (their progress, cancel
        # checks and results must never be turned away, however many share one address). They
        # prove it with ``trusted_header``, whose value ``trusted`` judges.
        self.trusted_header = trusted_header.lower().encode("latin-1")
        self.trusted = trusted
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
            (b"content-security-policy", csp.encode()),
        ]
        self._headers_static = common
        self._headers_api = [*common, (b"cache-control", b"no-store")]
        self.user_buckets = TokenBuckets(rate_user, rate_user * 2)
        self.ip_buckets = TokenBuckets(rate_ip, rate_ip * 2)
        self.auth_buckets = TokenBuckets(rate_auth, max(5.0, rate_auth * 20))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind: str = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Every request passes here: one look at the headers for the few this layer reads, rather
        # than decoding them all (a busy studio answers thousands of requests a second).
        host = authorization = rid = proof = ""
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-request-id":
                rid = value.decode("latin-1")
            elif name == self.trusted_header:
                proof = value.decode("latin-1")
        if not _VALID_RID.match(rid):
            rid = next_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        if kind == "websocket":
            # The server's own send, for frames after the handshake: a busy sync room sends each
            # update to hundreds of peers, and every wrapper in between costs per frame.
            state[RAW_SEND] = send
        bound = structlog.contextvars.bind_contextvars(request_id=rid)
        path = scope["path"]
        client = (scope.get("client") or ("unknown", 0))[0]
        status = 0
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
                message["headers"] = [*headers, rid_header, *self._security_headers(path, headers)]
            elif message["type"] == "websocket.accept":
                status = 101
            elif message["type"] == "websocket.close":
                status = message.get("code", 1000)
            await send(message)

        try:
            refusal = self._refuse(scope, host, authorization, proof, path, client)
            if refusal is not None:
                code, slug, title, detail, extra_headers = refusal
                status = code
                await _send_problem(scope, send_with_headers, code, slug, title, detail, rid, extra_headers)
                return
            await self.app(scope, receive, send_with_headers)
        finally:
            access_log(
                {
                    "event": "request",
                    "kind": kind,
                    "method": scope.get("method", "WS"),
                    "path": path,
                    "query": redact_query(scope.get("query_string", b"").decode("latin-1")),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": client,
                    "request_id": rid,
                },
                routine=_routine(path, status),
            )
            structlog.contextvars.reset_contextvars(**bound)

    def _refuse(
        self, scope: Scope, host: str, authorization: str, proof: str, path: str, client: str
    ) -> tuple[int, str, str, str, list[tuple[bytes, bytes]]] | None:
        host = _host_only(host)
        if not self.host_allowed(host):
            return (
                400,
                "host-not-allowed",
                "Host not allowed",
                f"This studio does not answer to the host name {host!r}. Add it to STUDIO_ALLOWED_HOSTS "
                "if you mean to reach the studio by that name.",
                [],
            )
        if not path.startswith(("/api", "/sync", "/events", "/schema")):
            return None  # the PWA's static files: cheap, and cached by the browser
        if proof and self.trusted(proof):
            return None
        token = _bearer(authorization, scope)
        checks: list[tuple[TokenBuckets, str]] = [(self.ip_buckets, client)]
        if token:
            checks.append((self.user_buckets, hashlib.sha256(token.encode()).hexdigest()[:24]))
        if path in AUTH_PATHS and scope.get("method") == "POST":
            checks.append((self.auth_buckets, client))
        for buckets, key in checks:
            wait = buckets.take(key)
            if wait:
                retry = str(max(1, round(wait + 0.5)))
                return (
                    429,
                    "rate-limited",
                    "Too many requests",
                    f"Too many requests: slow down and retry in {retry} s.",
                    [(b"retry-after", retry.encode())],
                )
        return None

    def _security_headers(self, path: str, headers: Any) -> list[tuple[bytes, bytes]]:
        # API answers are not stored by browsers, unless the handler says how to cache them
        # (media: kept and revalidated with its ETag).
        if not path.startswith("/api") or any(k.lower() == b"cache-control" for k, _ in headers):
            return self._headers_static
        return self._headers_api


def _host_only(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bearer(auth: str, scope: Scope) -> str:
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    if str(scope["type"]) == "websocket":
        for part in scope.get("query_string", b"").decode("latin-1").split("&"):
            if part.startswith("token="):
                return part[6:]
    return ""


async def _send_problem(
    scope: Scope,
    send: Callable[[Message], Any],
    status: int,
    slug: str,
    title: str,
    detail: str,
    rid: str,
    extra_headers: list[tuple[bytes, bytes]],
) -> None:
    if str(scope["type"]) == "websocket":
        # Refuse the handshake: the ASGI server answers it with an HTTP 403.
        await send({"type": "websocket.close", "code": 1008, "reason": title})
        return
    body = json.dumps(
        {
            "type": TYPE_BASE + slug,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope["path"],
            "request_id": rid,
        }
    ).encode()
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            *extra_headers,
        ],
    }
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
