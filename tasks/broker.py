"""The one place the Dramatiq broker is built and installed, before any actor module is imported.

``STUDIO_BROKER_URL=redis://…`` gives Dramatiq's RedisBroker, so worker processes on this or
other machines consume the queues; unset gives the in-memory broker the server runs its own
workers on (the embedded default for one machine).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

QUEUES = ("gpu", "cpu")


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


def redis_publisher(url: str) -> Callable[[dict[str, Any]], None]:
    """Publish task events to Redis pub/sub, where every server process relays them to /events."""
    client = redis.Redis.from_url(url)

    def publish(event: dict[str, Any]) -> None:
        # If Redis is away the task row still holds the state; the next event carries it again.
        with contextlib.suppress(redis.RedisError):
            client.publish(EVENTS_CHANNEL, json.dumps(event, default=str))

    return publish


def relay_events(
    url: str, deliver: Callable[[dict[str, Any]], None], stop: threading.Event,
    health: BrokerHealth | None = None,
) -> threading.Thread:  # fmt: skip
    """A thread that hands every event published on Redis to ``deliver`` until ``stop`` is set;
    it reconnects when Redis goes away and comes back (however long that takes), and keeps
    ``health`` up to date meanwhile."""

    def run() -> None:
        while not stop.is_set():
            try:
                client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(EVENTS_CHANNEL)
                if health is not None:
                    health.mark(True)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message and message.get("type") == "message":
                        deliver(json.loads(message["data"]))
            except (redis.RedisError, OSError, ValueError) as exc:
                if health is not None and isinstance(exc, redis.RedisError | OSError):
                    health.mark(False, f"Redis is not reachable ({type(exc).__name__}: {exc})")
                with contextlib.suppress(Exception):
                    client.close()
                stop.wait(1.0)

    thread = threading.Thread(target=run, name="studio-events-relay", daemon=True)
    thread.start()
    return thread


def install(url: str | None) -> dramatiq.Broker:
    """Build the broker and make it Dramatiq's global one; returns it."""
    broker = build_broker(url)
    dramatiq.set_broker(broker)
    return broker
