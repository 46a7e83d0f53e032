"""The one place the Dramatiq broker is built and installed, before any actor module is imported.

``STUDIO_BROKER_URL=redis://…`` gives Dramatiq's RedisBroker, so worker processes on this or
other machines consume the queues; unset gives the in-memory broker the server runs its own
workers on (the embedded default for one machine).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

QUEUES = ("gpu", "cpu")


def build_broker(url: str | None) -> dramatiq.Broker:
    """A Redis broker for ``url``, or an in-memory one when ``url`` is None."""
    broker: dramatiq.Broker = RedisBroker(url=url) if url else StubBroker()  # type: ignore[no-untyped-call]
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


def install(url: str | None) -> dramatiq.Broker:
    """Build the broker and make it Dramatiq's global one; returns it."""
    broker = build_broker(url)
    dramatiq.set_broker(broker)
    return broker
