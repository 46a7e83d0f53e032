"""The least a y-websocket server under Granian can be: an ASGI app that answers the sync
handshake with an empty document and then only waits. ``scripts/bench/sync.py`` runs it as the
``granian-floor`` target, so the memory Granian itself holds per idle connection is measured in
the same run as the studio and the reference server.

Run by Granian (``granian --interface asgi scripts.bench.granian_floor:app``), never imported by
the studio.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]

SYNC_STEP1_EMPTY = b"\x00\x00\x01\x00"  # sync, step 1, state vector of an empty document
SYNC_STEP2_EMPTY = b"\x00\x01\x02\x00\x00"  # sync, step 2, an empty update


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await receive()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "bytes": SYNC_STEP1_EMPTY})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes") or b""
        if data[:2] == b"\x00\x00":  # the client's step 1: answer with what we have (nothing)
            await send({"type": "websocket.send", "bytes": SYNC_STEP2_EMPTY})
