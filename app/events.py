"""``/events``: JSON messages about the caller's projects (task.*, project.committed …).

Publishers may be on any thread (task workers run in threads); each subscriber gets the events
of the projects it is a member of, in order, through its own queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from litestar import WebSocket, websocket

from app.sync_socket import accept_signed_in
from sync.db import Index

QUEUE_LIMIT = 1000


@dataclass(eq=False)
class Subscriber:
    user_id: str
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    projects: set[str] = field(default_factory=set)


class EventHub:
    def __init__(self, index: Index) -> None:
        self.index = index
        self.subscribers: set[Subscriber] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def publish(self, event: dict[str, Any]) -> None:
        """Deliver ``event`` (which names its ``project_id``) to every member listening; any thread."""
        if self.loop is None or self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            self.loop.call_soon_threadsafe(self._fanout, event)

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
    user = await accept_signed_in(socket)
    if user is None:
        return
    sub = Subscriber(user.id)
    hub.subscribers.add(sub)

    async def pump() -> None:
        while True:
            await socket.send_text(json.dumps(await sub.queue.get(), default=str))

    sender = asyncio.get_running_loop().create_task(pump())
    try:
        while (await socket.receive())["type"] != "websocket.disconnect":
            pass  # the client has nothing to say; reading notices when it leaves
    except Exception:  # noqa: S110 - a vanished client ends the subscription
        pass
    finally:
        hub.subscribers.discard(sub)
        sender.cancel()
