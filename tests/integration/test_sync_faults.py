"""Bad input on the sync socket: the sender is closed with a reason; the room, the document and
every other peer carry on as if nothing happened (sync/SPEC.md P3, D3, P2)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from pycrdt import Doc, Map

from sync import protocol
from sync.client import SyncClient
from tests.conftest import LiveServer, start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    s = start_server(tmp_path_factory.mktemp("sync-faults"))
    yield s
    stop_server(s)


@pytest.fixture
def project(server: LiveServer) -> dict[str, Any]:
    guest = httpx.post(f"{server.url}/api/auth/guest").json()
    headers = {"Authorization": f"Bearer {guest['token']}"}
    p = httpx.post(
        f"{server.url}/api/projects", headers=headers, json={"name": "Faults", "template": "three-act"}
    ).json()
    return {
        "id": p["id"],
        "token": guest["token"],
        "headers": headers,
        "ws": server.url.replace("http", "ws"),
    }


async def closed_with(ws_url: str, frames: list[Any]) -> tuple[int | None, str]:
    async with websockets.connect(ws_url, max_size=None) as ws:
        await ws.recv()  # the server's sync step 1
        try:
            for frame in frames:
                await ws.send(frame)
            while True:
                await asyncio.wait_for(ws.recv(), timeout=5)
        except websockets.ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason or ""


def state_of(server_project: dict[str, Any], url: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/api/projects/{server_project['id']}/state", headers=server_project["headers"])
    return dict(r.json())


async def check_bystander_unharmed(project: dict[str, Any], frames: list[Any], code: int) -> str:
    url = f"{project['ws']}/sync/{project['id']}?token={project['token']}"
    async with SyncClient(project["ws"], project["id"], project["token"]) as bystander:
        before = bystander.doc.get("meta", type=Map).to_py()
        got_code, reason = await closed_with(url, frames)
        assert got_code == code, (got_code, reason)
        # The bystander is still connected and still receives edits from others.
        async with SyncClient(project["ws"], project["id"], project["token"]) as editor:
            editor.doc.get("meta", type=Map)["name"] = "Still alive"
            await editor.flushed()
            for _ in range(100):
                if bystander.doc.get("meta", type=Map).get("name") == "Still alive":
                    break
                await asyncio.sleep(0.02)
        assert bystander.closed is None
        after = bystander.doc.get("meta", type=Map).to_py()
        assert after == {**before, "name": "Still alive"}
        return reason


@pytest.mark.parametrize(
    "frames",
    [
        [b"\x00"],
        [b"\x00\x00\xff\xff\xff\x0f"],
        [bytes([0, 2, 10]) + b"not an update"],
        [b"\x07\x01\x02"],
        [b"\x01\x05ab"],
        [b""],
    ],
    ids=["truncated", "bad-length", "garbage-update", "unknown-type", "short-awareness", "empty"],
)
def test_p3_malformed_frames_close_only_their_sender(project: dict[str, Any], frames: list[bytes]) -> None:
    reason = asyncio.run(check_bystander_unharmed(project, frames, protocol.Close.BAD_MESSAGE))
    assert reason


def test_p3_random_frames_never_harm_the_room(project: dict[str, Any]) -> None:
    rng = random.Random(1234)
    junk = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))) for _ in range(30)]
    url = f"{project['ws']}/sync/{project['id']}?token={project['token']}"

    async def run() -> None:
        for frame in junk:
            async with websockets.connect(url) as ws:
                await ws.recv()
                await ws.send(frame)
                await asyncio.sleep(0.01)
        await check_bystander_unharmed(project, [b"\x09"], protocol.Close.BAD_MESSAGE)

    asyncio.run(run())


def test_p3_text_frames_are_refused(project: dict[str, Any]) -> None:
    assert "binary" in asyncio.run(check_bystander_unharmed(project, ["hello"], protocol.Close.BAD_MESSAGE))


def test_p3_oversized_frames_are_refused(project: dict[str, Any]) -> None:
    huge = protocol.sync_update(b"\x00" * (protocol.MAX_FRAME_BYTES + 10))
    asyncio.run(check_bystander_unharmed(project, [huge], protocol.Close.TOO_LARGE))


def test_p3_awareness_floods_are_rate_limited(project: dict[str, Any]) -> None:
    flood = [
        protocol.awareness(protocol.encode_awareness([(4242, clock, '{"cursor":[1,2]}')]))
        for clock in range(600)
    ]
    asyncio.run(check_bystander_unharmed(project, flood, protocol.Close.RATE_LIMITED))


def test_d3_an_update_for_another_document_is_undone(project: dict[str, Any], server: LiveServer) -> None:
    other = Doc()
    meta = other.get("meta", type=Map)
    meta["uuid"] = "11111111-2222-4333-8444-555555555555"
    meta["name"] = "Someone else's film"
    frame = protocol.sync_update(other.get_update())
    before = state_of(project, server.url)
    asyncio.run(check_bystander_unharmed(project, [frame], protocol.Close.BAD_MESSAGE))
    after = state_of(project, server.url)
    assert after["meta"]["uuid"] == project["id"]
    assert after["meta"]["name"] != "Someone else's film"
    assert before["meta"]["uuid"] == after["meta"]["uuid"]
