"""A Python sync client: opens a project's document over ``/sync/{project_id}`` like a browser does.

Tests, workers and scripts use it to edit projects the same way people do::

    async with SyncClient("ws://127.0.0.1:8000", project_id, token) as client:
        with client.doc.transaction():
            client.doc.get("meta", type=Map)["name"] = "New name"
        await client.flushed()
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import websockets
from pycrdt import Doc

from sync import protocol
from sync.protocol import Kind


class SyncClosed(ConnectionError):
    """The server closed the socket; ``code`` and ``reason`` say why."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed with code {code}: {reason}")
        self.code = code
        self.reason = reason


class SyncClient:
    def __init__(self, base_url: str, project_id: str, token: str, doc: Doc[Any] | None = None) -> None:
        self.url = f"{base_url.rstrip('/')}/sync/{project_id}?token={token}"
        self.doc: Doc[Any] = doc if doc is not None else Doc()
        self.peers: dict[int, str] = {}
        self.received_updates = 0
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._closed: SyncClosed | None = None
        self._applying = False
        self._outgoing: list[bytes] = []
        self._subscription = self.doc.observe(self._on_local_change)

    async def __aenter__(self) -> SyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, wait_s: float = 10.0) -> None:
        """Connect and wait until the first sync is complete; raises :class:`SyncClosed` if refused."""
        self._synced.clear()
        self._closed = None
        self._ws = await websockets.connect(self.url, max_size=protocol.MAX_FRAME_BYTES)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        try:
            await self._ws.send(protocol.sync_step1(self.doc.get_state()))
            # Offline edits made since the last connection travel as one update.
            await self._ws.send(protocol.sync_update(self.doc.get_update()))
        except websockets.ConnectionClosed:
            await self._reader
            raise self._closed or SyncClosed(None, "connection lost") from None
        self._outgoing.clear()
        waiter = asyncio.get_running_loop().create_task(self._synced.wait())
        done, _ = await asyncio.wait(
            {waiter, self._reader}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            if self._closed is not None:
                raise self._closed
            raise TimeoutError("the server did not complete the sync")

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                message = protocol.parse(frame)
                if message.kind is Kind.SYNC_STEP1:
                    await self._ws.send(protocol.sync_step2(self.doc.get_update(message.payload)))
                elif message.kind in (Kind.SYNC_STEP2, Kind.SYNC_UPDATE):
                    self._applying = True
                    try:
                        self.doc.apply_update(message.payload)
                    finally:
                        self._applying = False
                    self.received_updates += message.kind is Kind.SYNC_UPDATE
                    if message.kind is Kind.SYNC_STEP2:
                        self._synced.set()
                elif message.kind is Kind.AWARENESS:
                    for client_id, _clock, state in protocol.decode_awareness(message.payload):
                        if state == "null":
                            self.peers.pop(client_id, None)
                        else:
                            self.peers[client_id] = state
        except websockets.ConnectionClosed:
            pass
        finally:
            code = getattr(self._ws, "close_code", None)
            self._closed = SyncClosed(code, getattr(self._ws, "close_reason", None) or "connection lost")

    def _on_local_change(self, event: Any) -> None:
        if not self._applying:
            self._outgoing.append(event.update)
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon(self._send_outgoing)

    def _send_outgoing(self) -> None:
        if self._ws is None or self._closed is not None:
            return  # offline: connect() sends everything the server lacks
        batch, self._outgoing = self._outgoing, []
        for update in batch:
            asyncio.get_running_loop().create_task(self._send(protocol.sync_update(update)))

    async def _send(self, frame: bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._ws.send(frame)

    async def set_awareness(self, state: str, clock: int) -> None:
        """Announce this client's presence (``state`` is JSON, ``"null"`` to leave)."""
        payload = protocol.encode_awareness([(self.doc.client_id, clock, state)])
        await self._ws.send(protocol.awareness(payload))

    async def flushed(self) -> None:
        """Wait until local changes have been handed to the socket."""
        await asyncio.sleep(0)
        self._send_outgoing()
        await asyncio.sleep(0.05)

    @property
    def closed(self) -> SyncClosed | None:
        return self._closed

    async def disconnect(self) -> None:
        """Go offline, keeping the doc: edits made now are sent by the next :meth:`connect`."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        self._ws = None

    async def close(self) -> None:
        await self.disconnect()
        self.doc.unobserve(self._subscription)
