"""``/sync/{project_id}``: the thin adapter between a Litestar WebSocket and a sync room.

It authenticates and checks the role, answering with a close code before any document byte
(4401 no or bad token, 4403 no access, 4404 unknown project), then hands the socket to the
room as a channel. Everything else is the room's business (``sync/room.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

from app.accounts.service import User, token_hash
from app.deps import Services
from app.edge import RAW_SEND
from app.logs import get_logger
from app.projects.access import can_write
from sync.protocol import MAX_FRAME_BYTES, Close, ProtocolError
from sync.room import Who

log = get_logger("app.sync")


class SocketChannel:
    """A Litestar WebSocket as a room's channel, and the frames it receives."""

    def __init__(self, socket: WebSocket[Any, Any, Any]) -> None:
        self.socket = socket
        self.reading = False
        # After the handshake a frame needs none of the middleware's send wrappers (they watch
        # for the response start and the close): sent straight to the server, a broadcast to
        # 500 peers costs a third less.
        self._send = socket.scope.get("state", {}).get(RAW_SEND) or socket.send

    async def send(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data, "text": None})

    async def close(self, code: int, reason: str) -> None:
        if self.reading:
            # The frame loop is waiting on this socket: it receives the disconnect itself.
            with contextlib.suppress(Exception):
                await self.socket.close(code=code, reason=reason[:120])
        else:
            await refuse(self.socket, code, reason[:120])

    async def frames(self) -> AsyncIterator[bytes]:
        while True:
            self.reading = True
            try:
                message = await self.socket.receive()
            except WebSocketDisconnect:
                return
            finally:
                self.reading = False
            if message["type"] == "websocket.disconnect":
                return
            data: bytes | None = message.get("bytes")  # type: ignore[assignment]
            if data is None:
                raise ProtocolError("text frames are not part of the protocol: send binary frames")
            if len(data) > MAX_FRAME_BYTES:
                raise ProtocolError(f"frame of {len(data)} bytes is over the limit", Close.TOO_LARGE)
            yield data


async def refuse(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> None:
    """Close with ``code`` so that the client really sees it.

    Clients send their first messages the moment the socket opens. If the server closes the TCP
    connection with those unread, the kernel resets it and the client reports 1006 instead of
    our code. So: read what the client sends until it pauses, close, then read until the
    client's close arrives.
    """
    await _drain(socket, quiet_s=0.05, limit_s=1.0)
    with contextlib.suppress(Exception):
        await socket.close(code=code, reason=reason)
    await _drain(socket, quiet_s=2.0, limit_s=2.0)


async def _drain(socket: WebSocket[Any, Any, Any], quiet_s: float, limit_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    with contextlib.suppress(Exception):
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            async with asyncio.timeout(min(quiet_s, left)):
                if (await socket.receive())["type"] == "websocket.disconnect":
                    return


async def accept_signed_in(socket: WebSocket[Any, Any, Any]) -> User | None:
    """Accept the socket and return who ``?token=`` belongs to; None after closing with 4401."""
    svc: Services = socket.app.state.services
    await socket.accept()
    user = svc.accounts.authenticate(socket.query_params.get("token", ""))
    if user is None:
        await refuse(socket, Close.UNAUTHENTICATED, "sign in first: pass ?token=")
    return user


@websocket("/sync/{project_id:str}", name="sync")
async def sync_socket(socket: WebSocket[Any, Any, Any], project_id: FromPath[str]) -> None:
    svc: Services = socket.app.state.services
    user = await accept_signed_in(socket)
    if user is None:
        return
    row = svc.studio.index.db.execute(
        "SELECT p.deleted_at, (SELECT role FROM members m WHERE m.project_id = p.id AND m.user_id = ?) "
        "FROM projects p WHERE p.id = ?",
        [user.id, project_id],
    ).fetchone()
    if row is None or row[0] is not None:
        await refuse(socket, Close.NOT_FOUND, "no such project")
        return
    if row[1] is None:
        await refuse(socket, Close.FORBIDDEN, "you are not a member of this project")
        return
    room = await svc.rooms.get(project_id)
    who = Who(user_id=user.id, name=user.name, can_write=can_write(row[1]),
              session=token_hash(socket.query_params.get("token", "")))  # fmt: skip
    log.info("sync_joined", project_id=project_id, user_id=user.id, role=row[1])
    channel = SocketChannel(socket)
    await room.serve(channel, who, channel.frames())
