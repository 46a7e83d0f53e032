"""``/events``: JSON messages about the caller's projects (task.*, asset.*, take.created,
node.stale, project.committed …).

Every event goes through one path, :meth:`EventHub.publish`, in whichever process it happens:
it gets an ``id``, this process's listeners get it at once, and with Redis configured it is also
published on Redis, where the other server processes' relays pick it up (``tasks.broker``) and
hand it to :meth:`EventHub.receive`. A relay skips what its own process published, so each
listener gets each event once. The task events of ``studio worker`` processes are published by
the server whose worker API (``app.worker_api``) they told. Without Redis everything stays in the
process.

Publishers may be on any thread (task workers run in threads); each subscriber gets the events
of the projects it is a member of, in order, through its own queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar import WebSocket, websocket

from app.deps import Services
from app.sync_socket import refuse
from sync.db import Index
from sync.protocol import Close
from tasks.broker import stamp

QUEUE_LIMIT = 1000
log = logging.getLogger("app.events")
Observer = Callable[[dict[str, Any]], None]


@dataclass(eq=False)
class Subscriber:
    user_id: str
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    projects: set[str] = field(default_factory=set)


class EventHub:
    """This process's side of ``/events`` (see the module docstring)."""

    def __init__(self, index: Index, origin: str | None = None) -> None:
        self.index = index
        # Names this process on the Redis channel, so its relay can skip its own events.
        self.origin = origin or f"{platform.node()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.subscribers: set[Subscriber] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        # The other server processes (Redis), when there are any; None: this process only.
        self.remote: Callable[[dict[str, Any]], None] | None = None
        # Told of every event this process hears of, its own or relayed (the activity feed).
        self.observers: list[Observer] = []

    def publish(self, event: dict[str, Any]) -> None:
        """Deliver ``event`` (which names its ``project_id``) to every member listening, on any
        server process; gives it its ``id``. Any thread."""
        stamp(event)
        self.receive(event)
        if self.remote is not None:
            self.remote(event)

    def receive(self, event: dict[str, Any]) -> None:
        """Deliver an event (published here, or relayed from another process) to this process's
        listeners and observers. Any thread."""
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                self.loop.call_soon_threadsafe(self._fanout, event)
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                log.exception("event_observer_failed type=%s", event.get("type"))

    def _fanout(self, event: dict[str, Any]) -> None:
        project_id = event.get("project_id")
        for sub in list(self.subscribers):
            if project_id not in sub.projects and not self._is_member(sub.user_id, project_id):
                continue
            sub.projects.add(str(project_id))
            with contextlib.suppress(asyncio.QueueFull):  # a stalled listener misses events, not others
                sub.queue.put_nowait(event)

    def _is_member(self, user_id: str, project_id: Any) -> bool:
        row = self.index.db.execute(
            "SELECT 1 FROM members WHERE user_id = ? AND project_id = ?", [user_id, project_id]
        ).fetchone()
        return row is not None


@websocket("/events", name="events")
async def events_socket(socket: WebSocket[Any, Any, Any]) -> None:
    hub: EventHub = socket.app.state.events
    svc: Services = socket.app.state.services
    user = svc.accounts.authenticate(socket.query_params.get("token", ""))
    # Listening starts before the socket is accepted: a client that acts as soon as it is open
    # (enqueues a task, say) hears every event of it, task.queued included.
    sub = Subscriber(user.id) if user is not None else None
    if sub is not None:
        hub.subscribers.add(sub)
    sender: asyncio.Task[None] | None = None
    try:
        await socket.accept()
        if sub is None:
            await refuse(socket, Close.UNAUTHENTICATED, "sign in first: pass ?token=")
            return

        async def pump() -> None:
            while True:
                await socket.send_text(json.dumps(await sub.queue.get(), default=str))

        sender = asyncio.get_running_loop().create_task(pump())
        while (await socket.receive())["type"] != "websocket.disconnect":
            pass  # the client has nothing to say; reading notices when it leaves
    except Exception:  # noqa: S110 - a vanished client ends the subscription
        pass
    finally:
        if sub is not None:
            hub.subscribers.discard(sub)
        if sender is not None:
            sender.cancel()
