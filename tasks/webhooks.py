"""Webhooks: a project's task and commit events POSTed as JSON to URLs its owners configure.

Each delivery is a Dramatiq message on the ``cpu`` queue, sent where the event happens (the
server for enqueues and commits, the worker for a task's progress through its states), so an
event is delivered once however many server processes relay it. A receiver that fails or does
not answer is tried again with exponential backoff (Dramatiq's Retries middleware); every
attempt is written to the delivery log.

Requests are signed so a receiver can tell they come from this studio and are fresh::

    X-Studio-Timestamp: 1764090000
    X-Studio-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the secret>

A receiver recomputes the HMAC over the timestamp, a dot and the body bytes exactly as received,
compares in constant time, and refuses timestamps more than a few minutes old (a replay).

>>> sign("whsec_x", 1764090000, b'{}')[:7]
'sha256='
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import dramatiq
import httpx
from dramatiq.middleware import CurrentMessage

from sync.db import Index

log = logging.getLogger("tasks.webhooks")

# What a webhook can subscribe to. Progress is left out on purpose: it comes many times a second.
EVENTS = ("task.queued", "task.running", "task.retrying", "task.succeeded", "task.failed",
          "task.cancelled", "commit")  # fmt: skip
PATTERNS = (*EVENTS, "task.*", "*")
MAX_RETRIES = 10  # about 17 minutes of tries in all with the backoff below
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 10 * 60_000
TIMEOUT_S = 10.0
KEEP_DELIVERIES = 1000  # per webhook; older attempts are dropped from the log
USER_AGENT = "GenerativeMediaStudio-Webhooks/1"
COLUMNS = "id, project_id, url, events, active, created_by, created_at, updated_at"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Studio-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def event_name(event_type: str) -> str | None:
    """The webhook event for an ``/events`` type (``project.committed`` is ``commit``), or None."""
    name = "commit" if event_type == "project.committed" else event_type
    return name if name in EVENTS else None


def matches(patterns: list[str], name: str) -> bool:
    return any(p in ("*", name) or (p == "task.*" and name.startswith("task.")) for p in patterns)


class WebhookStore:
    """Webhook rows and their delivery log in the studio's SQLite index."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def create(self, project_id: str, url: str, events: list[str], created_by: str | None) -> dict[str, Any]:
        """A new webhook; the returned dict holds its ``secret``, which is never shown again."""
        hook_id, secret, now = str(uuid.uuid4()), "whsec_" + secrets.token_urlsafe(32), now_iso()
        self.index.db.execute(
            "INSERT INTO webhooks(id, project_id, url, events, secret, active, created_by, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
            [hook_id, project_id, url, json.dumps(events), secret, created_by, now, now],
        )
        hook = self.get(project_id, hook_id)
        assert hook is not None
        return {**hook, "secret": secret}

    def of_project(self, project_id: str) -> list[dict[str, Any]]:
        query = f"SELECT {COLUMNS} FROM webhooks WHERE project_id = ? ORDER BY created_at"  # noqa: S608
        rows = self.index.db.execute(query, [project_id]).fetchall()
        return [self._public(r) for r in rows]

    def get(self, project_id: str, hook_id: str) -> dict[str, Any] | None:
        query = f"SELECT {COLUMNS} FROM webhooks WHERE project_id = ? AND id = ?"  # noqa: S608
        row = self.index.db.execute(query, [project_id, hook_id]).fetchone()
        return self._public(row) if row else None

    def update(self, project_id: str, hook_id: str, **fields: Any) -> dict[str, Any] | None:
        if "events" in fields:
            fields["events"] = json.dumps(fields["events"])
        if "active" in fields:
            fields["active"] = int(bool(fields["active"]))
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.index.db.execute(
                f"UPDATE webhooks SET {sets}, updated_at = ? WHERE project_id = ? AND id = ?",  # noqa: S608
                [*fields.values(), now_iso(), project_id, hook_id],
            )
        return self.get(project_id, hook_id)

    def delete(self, project_id: str, hook_id: str) -> bool:
        row = self.index.db.execute(
            "DELETE FROM webhooks WHERE project_id = ? AND id = ? RETURNING id", [project_id, hook_id]
        ).fetchone()
        return row is not None

    def deliveries(self, hook_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The newest attempts first."""
        rows = self.index.db.execute(
            "SELECT id, event_id, event_type, attempt, status_code, duration_ms, error, ok, will_retry, time "
            "FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?",
            [hook_id, limit],
        ).fetchall()
        keys = ("id", "event_id", "event_type", "attempt", "status_code", "duration_ms", "error", "ok",
                "will_retry", "time")  # fmt: skip
        return [{**dict(zip(keys, r, strict=True)), "ok": bool(r[7]), "will_retry": bool(r[8])} for r in rows]

    def record(self, hook_id: str, event_id: str, event_type: str, attempt: int, *, status_code: int | None,
               duration_ms: float | None, error: str | None, will_retry: bool) -> None:  # fmt: skip
        db = self.index.db
        with contextlib.suppress(Exception):  # the webhook was deleted meanwhile: nothing to log
            row = db.execute(
                "INSERT INTO webhook_deliveries(webhook_id, event_id, event_type, attempt, status_code, duration_ms, "
                "error, ok, will_retry, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [hook_id, event_id, event_type, attempt, status_code, duration_ms, error, int(error is None),
                 int(will_retry), now_iso()],
            ).fetchone()  # fmt: skip
            if row[0] % 100 == 0:  # now and then, drop what is past the log's length
                db.execute(
                    "DELETE FROM webhook_deliveries WHERE webhook_id = ? AND id <= ?",
                    [hook_id, row[0] - KEEP_DELIVERIES],
                )

    def targets(self, project_id: str, name: str) -> list[str]:
        """The active webhooks of ``project_id`` that subscribe to event ``name``."""
        rows = self.index.db.execute(
            "SELECT id, events FROM webhooks WHERE project_id = ? AND active = 1", [project_id]
        ).fetchall()
        return [hook_id for hook_id, events in rows if matches(json.loads(events), name)]

    def target(self, hook_id: str) -> tuple[str, str] | None:
        """(url, secret) of an active webhook."""
        row = self.index.db.execute(
            "SELECT url, secret FROM webhooks WHERE id = ? AND active = 1", [hook_id]
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    @staticmethod
    def _public(row: tuple[Any, ...]) -> dict[str, Any]:
        keys = [c.strip() for c in COLUMNS.split(",")]
        hook = dict(zip(keys, row, strict=True))
        hook["events"] = json.loads(hook["events"])
        hook["active"] = bool(hook["active"])
        return hook


class DeliveryBook(Protocol):
    """What a delivery needs: where to send (``target``) and where to log each attempt
    (``record``). :class:`WebhookStore` on the server; ``tasks.remote.RemoteWebhookBook`` in a
    ``studio worker``, which asks the server."""

    def target(self, hook_id: str) -> tuple[str, str] | None: ...

    def record(self, hook_id: str, event_id: str, event_type: str, attempt: int, *, status_code: int | None,
               duration_ms: float | None, error: str | None, will_retry: bool) -> None: ...  # fmt: skip


def delivery_actor(book: DeliveryBook, broker: dramatiq.Broker) -> dramatiq.Actor[Any, Any]:
    """The ``deliver_webhook`` actor of ``broker`` (cpu queue), delivering with ``book``."""

    def deliver(hook_id: str, event_id: str, name: str, body: str) -> None:
        deliver_once(book, hook_id, event_id, name, body)

    return dramatiq.Actor(
        deliver, broker=broker, actor_name="deliver_webhook", queue_name="cpu", priority=0,
        options={"max_retries": MAX_RETRIES, "min_backoff": MIN_BACKOFF_MS, "max_backoff": MAX_BACKOFF_MS,
                 "time_limit": int(TIMEOUT_S * 3 * 1000)},
    )  # fmt: skip


class Webhooks:
    """Fires events at a project's webhooks through the ``deliver_webhook`` actor of ``broker``.

    >>> hooks = Webhooks(index, broker)  # doctest: +SKIP
    >>> hooks.fire({"type": "task.succeeded", "project_id": pid, "task": {...}})  # doctest: +SKIP
    """

    def __init__(self, index: Index, broker: dramatiq.Broker) -> None:
        self.store = WebhookStore(index)
        self.actor = delivery_actor(self.store, broker)

    def fire(self, event: dict[str, Any]) -> None:
        """Queue a delivery of ``event`` to each webhook of its project that wants it. Never raises:
        an event that cannot be queued is written to the delivery log instead."""
        name = event_name(str(event.get("type", "")))
        project_id = event.get("project_id")
        if name is None or not project_id:
            return
        try:
            targets = self.store.targets(str(project_id), name)
        except Exception:
            log.exception("webhook_targets_failed project=%s", project_id)
            return
        if not targets:
            return
        # The /events id: a receiver can match a delivery with the activity line of its event.
        event_id = str(event.get("id") or uuid.uuid4())
        data = {k: v for k, v in event.items() if k not in ("id", "type", "project_id")}
        body = json.dumps({"id": event_id, "type": name, "project_id": project_id, "time": now_iso(),
                           "data": data}, default=str, sort_keys=True)  # fmt: skip
        for hook_id in targets:
            try:
                self.actor.send(hook_id, event_id, name, body)
            except Exception as exc:
                log.warning("webhook_not_queued hook=%s error=%r", hook_id, exc)
                self.store.record(hook_id, event_id, name, 0, status_code=None, duration_ms=None,
                                  error=f"Not sent: the task queue could not be reached ({type(exc).__name__}).",
                                  will_retry=False)  # fmt: skip


def deliver_once(book: DeliveryBook, hook_id: str, event_id: str, name: str, body: str) -> None:
    """One attempt: POST ``body`` signed to the webhook's URL and log it; raising
    :class:`dramatiq.Retry` on failure has the Retries middleware try again later."""
    target = book.target(hook_id)
    if target is None:
        return  # deleted or paused since the event
    url, secret = target
    message = CurrentMessage.get_current_message()
    retries = int(message.options.get("retries", 0)) if message is not None else 0
    raw = body.encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Studio-Event": name,
        "X-Studio-Delivery": event_id,
        "X-Studio-Timestamp": str(timestamp),
        "X-Studio-Signature": sign(secret, timestamp, raw),
    }
    started = time.perf_counter()
    status: int | None = None
    retry_after_ms: int | None = None
    try:
        response = httpx.post(url, content=raw, headers=headers, timeout=TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        error: str | None = f"The request failed: {type(exc).__name__}: {exc}"[:500]
    else:
        status = response.status_code
        error = None if 200 <= status < 300 else f"The receiver answered {status} {response.reason_phrase}"
        retry_after = response.headers.get("retry-after", "")
        if error and retry_after.isdigit():
            retry_after_ms = min(MAX_BACKOFF_MS, int(retry_after) * 1000)
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    will_retry = error is not None and retries < MAX_RETRIES
    book.record(hook_id, event_id, name, retries + 1, status_code=status, duration_ms=duration_ms,
                      error=error, will_retry=will_retry)  # fmt: skip
    if error is not None:
        raise dramatiq.Retry(error, delay=retry_after_ms)
