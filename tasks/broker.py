"""The one place the Dramatiq broker is built and installed, before any actor module is imported.

``STUDIO_BROKER_URL=redis://…`` gives Dramatiq's RedisBroker, so worker processes on this or
other machines consume the queues; unset gives the in-memory broker the server runs its own
workers on (the embedded default for one machine).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from queue import Full, Queue
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

QUEUES = ("gpu", "cpu")
log = logging.getLogger("tasks.broker")


class QueueUnavailable(RuntimeError):
    """The broker (Redis) cannot be reached, so nothing can be queued right now."""


def build_broker(url: str | None) -> dramatiq.Broker:
    """A Redis broker for ``url``, or an in-memory one when ``url`` is None."""
    if url:
        # Short connect timeouts: with Redis away a send fails in a moment instead of holding
        # the request that made it (redis-py's default is 5 s per try).
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=10.0)
        broker: dramatiq.Broker = RedisBroker(client=client)  # type: ignore[no-untyped-call]
    else:
        broker = StubBroker()
    # Webhook deliveries read their attempt number from the message being processed.
    broker.add_middleware(CurrentMessage())
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


def backlog(broker: dramatiq.Broker, queue: str) -> int:
    """Messages of ``queue`` waiting in the broker (not yet fetched by a worker)."""
    if isinstance(broker, RedisBroker):
        return int(broker.client.llen(f"{broker.namespace}:{queue}"))
    if isinstance(broker, StubBroker):
        return int(broker.queues[queue].qsize())
    return 0


@dataclass
class BrokerHealth:
    """Whether the broker answers, as last seen by the event relay or a send; for /api/health."""

    kind: str
    up: bool = True
    since: float = field(default_factory=time.time)
    detail: str = ""

    def mark(self, up: bool, detail: str = "") -> bool:
        """Record the state; True when it changed."""
        changed = up != self.up
        if changed:
            self.up, self.since = up, time.time()
        self.detail = "" if up else detail
        return changed

    def as_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"status": "ok" if self.up else "unavailable", "kind": self.kind}
        if not self.up:
            state["detail"] = self.detail
            state["down_for_s"] = round(time.time() - self.since, 1)
        return state


EVENTS_CHANNEL = "studio:events"
# "Project X's update log grew": the other server processes' rooms catch up (sync/SPEC.md S1).
SYNC_CHANNEL = "studio:sync"
# Awareness of the peers of one server process, for the others (sync/SPEC.md S2).
AWARENESS_CHANNEL = "studio:awareness"
PUBLISH_BACKLOG = 10_000  # events a server holds for Redis while it is away; older ones are dropped


def stamp(event: dict[str, Any]) -> dict[str, Any]:
    """Give ``event`` its ``id`` (once, in place): every process that hears of it, and the activity
    feed and webhook log that record it, name it by that id, so it is recorded once.

    >>> stamp({"type": "task.queued"})["id"] != ""
    True
    """
    event.setdefault("id", uuid.uuid4().hex)
    return event


def _envelope(event: dict[str, Any], origin: str | None) -> str:
    return json.dumps({"origin": origin, "event": event}, default=str)


def _unwrap(data: bytes | str) -> tuple[str | None, dict[str, Any]]:
    """(origin, event) of a message on the events channel (a bare event has no origin)."""
    message = json.loads(data)
    if isinstance(message, dict) and isinstance(message.get("event"), dict) and "origin" in message:
        return message["origin"], message["event"]
    return None, message


class EventPublisher:
    """Publishes a server's own events on Redis from a thread of its own, in order, so the
    event loop never waits for Redis (nor stalls while it is away).

    >>> publisher = EventPublisher(url, origin="host:123:ab12"); publisher.start()  # doctest: +SKIP
    >>> publisher({"type": "asset.uploaded", "project_id": pid, "asset": {...}})  # doctest: +SKIP
    """

    def __init__(self, url: str, origin: str, channel: str = EVENTS_CHANNEL) -> None:
        self.url, self.origin, self.channel = url, origin, channel
        self._queue: Queue[dict[str, Any] | None] = Queue(PUBLISH_BACKLOG)
        self._thread: threading.Thread | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(stamp(event))
        except Full:
            log.warning("event_not_relayed type=%s: Redis has been away too long", event.get("type"))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="studio-events-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(Full):
            self._queue.put_nowait(None)

    def _run(self) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1.0, socket_timeout=5.0)
        while (event := self._queue.get()) is not None:
            try:
                client.publish(self.channel, _envelope(event, self.origin))
            except redis.RedisError as exc:
                # Other servers miss what happens here while Redis is away (pub/sub keeps
                # nothing); this process's own listeners had it already. What piled up meanwhile
                # is dropped too, so nobody gets a burst of stale events when Redis is back.
                time.sleep(1.0)
                dropped = 1
                while not self._queue.empty():
                    if self._queue.get_nowait() is None:
                        return
                    dropped += 1
                log.warning("events_not_relayed channel=%s dropped=%d error=%r", self.channel, dropped, exc)


def relay_events(
    url: str, deliver: Callable[[dict[str, Any]], None], stop: threading.Event,
    health: BrokerHealth | None = None, origin: str | None = None, channel: str = EVENTS_CHANNEL,
) -> threading.Thread:  # fmt: skip
    """A thread that hands every event published on Redis to ``deliver`` until ``stop`` is set,
    except those published by ``origin`` (this process, which delivered them itself already);
    it reconnects when Redis goes away and comes back (however long that takes), and keeps
    ``health`` up to date meanwhile."""

    def run() -> None:
        while not stop.is_set():
            try:
                client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(channel)
                if health is not None:
                    health.mark(True)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message and message.get("type") == "message":
                        sender, event = _unwrap(message["data"])
                        if origin is None or sender != origin:
                            deliver(event)
            except (redis.RedisError, OSError, ValueError) as exc:
                if health is not None and isinstance(exc, redis.RedisError | OSError):
                    health.mark(False, f"Redis is not reachable ({type(exc).__name__}: {exc})")
                with contextlib.suppress(Exception):
                    client.close()
                stop.wait(1.0)

    thread = threading.Thread(target=run, name=f"studio-relay-{channel}", daemon=True)
    thread.start()
    return thread


def install(url: str | None) -> dramatiq.Broker:
    """Build the broker and make it Dramatiq's global one; returns it."""
    broker = build_broker(url)
    dramatiq.set_broker(broker)
    return broker
