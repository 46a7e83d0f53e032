"""The one place the Dramatiq broker is built and installed, before any actor module is imported.

``STUDIO_BROKER_URL=redis://…`` gives Dramatiq's RedisBroker, so worker processes on this or
other machines consume the queues; unset gives the in-memory broker the server runs its own
workers on (the embedded default for one machine).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

QUEUES = ("gpu", "cpu")


def build_broker(url: str | None) -> dramatiq.Broker:
    """A Redis broker for ``url``, or an in-memory one when ``url`` is None."""
    broker: dramatiq.Broker = RedisBroker(url=url) if url else StubBroker()  # type: ignore[no-untyped-call]
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


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
    url: str, deliver: Callable[[dict[str, Any]], None], stop: threading.Event
) -> threading.Thread:
    """A thread that hands every event published on Redis to ``deliver`` until ``stop`` is set;
    it reconnects when Redis goes away and comes back."""

    def run() -> None:
        while not stop.is_set():
            try:
                pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(EVENTS_CHANNEL)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message and message.get("type") == "message":
                        deliver(json.loads(message["data"]))
            except (redis.RedisError, OSError, ValueError):
                stop.wait(1.0)

    thread = threading.Thread(target=run, name="studio-events-relay", daemon=True)
    thread.start()
    return thread


def install(url: str | None) -> dramatiq.Broker:
    """Build the broker and make it Dramatiq's global one; returns it."""
    broker = build_broker(url)
    dramatiq.set_broker(broker)
    return broker
