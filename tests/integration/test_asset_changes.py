"""Asset status on /events and in the activity feed, and dependency changes: when an asset's file
changes (replaced, or edited on disk) the nodes that use it are marked stale and their owners told."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image
from pycrdt import Map

from sync.client import SyncClient
from sync.docmodel import doc_to_state, set_path
from tests.conftest import LiveServer, git, start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    s = start_server(
        tmp_path_factory.mktemp("changes"), STUDIO_SEED_SAMPLES="false", STUDIO_RATE_LIMIT_AUTH="1000"
    )
    yield s
    stop_server(s)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (400, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def account(server: LiveServer, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    body = {"email": f"{name.lower()}-{time.monotonic_ns()}@changes.example.org", "password": "long enough secret",
            "name": name}  # fmt: skip
    r = httpx.post(f"{server.url}/api/auth/register", json=body).json()
    return {"Authorization": f"Bearer {r['token']}"}, r["user"]


async def eventually(check: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


@contextlib.asynccontextmanager
async def listening(server: LiveServer, token: str) -> Any:
    """The /events messages of the caller's projects, collected while the block runs."""
    seen: list[dict[str, Any]] = []
    async with websockets.connect(f"{server.url.replace('http', 'ws')}/events?token={token}") as ws:

        async def pump() -> None:
            async for message in ws:
                seen.append(json.loads(message))

        reader = asyncio.get_running_loop().create_task(pump())
        try:
            yield seen
        finally:
            reader.cancel()


def test_upload_and_thumbnail_status_are_events_and_activity(server: LiveServer) -> None:
    h, _ = account(server, "Agnes")
    pid = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "Status"}).json()["id"]

    async def run() -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        async with listening(server, h["Authorization"][7:]) as seen:
            async with httpx.AsyncClient() as c:
                good = (await c.post(f"{server.url}/api/projects/{pid}/assets", headers=h,
                                     files={"file": ("harbour.png", png((0, 90, 160)), "image/png")})).json()  # fmt: skip
                broken = (await c.post(f"{server.url}/api/projects/{pid}/assets", headers=h,
                                       files={"file": ("broken.png", b"not an image at all", "image/png")})).json()  # fmt: skip

            def types_for(asset: dict[str, Any]) -> list[str]:
                return [e["type"] for e in seen if e["type"].startswith("asset.") and
                        asset["id"] in (e.get("asset"), (e.get("asset") or {}).get("id") if isinstance(e.get("asset"), dict) else None)]  # fmt: skip

            assert await eventually(lambda: "asset.thumbnail.ready" in types_for(good))
            assert await eventually(lambda: "asset.thumbnail.failed" in types_for(broken))
        assert types_for(good) == ["asset.uploaded", "asset.thumbnail.queued", "asset.thumbnail.ready"]
        assert types_for(broken) == ["asset.uploaded", "asset.thumbnail.queued", "asset.thumbnail.failed"]
        return seen, good, broken

    seen, good, broken = asyncio.run(run())
    failed = next(e for e in seen if e["type"] == "asset.thumbnail.failed")
    assert "is not an image this studio can read" in failed["error"]

    thumb = httpx.get(f"{server.url}/api/projects/{pid}/assets/{good['id']}/thumbnail", headers=h)
    assert thumb.status_code == 200
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 160)
    assert (
        httpx.get(f"{server.url}/api/projects/{pid}/assets/{broken['id']}/thumbnail", headers=h).status_code
        == 404
    )
    stranger, _ = account(server, "Stranger")
    assert (
        httpx.get(
            f"{server.url}/api/projects/{pid}/assets/{good['id']}/thumbnail", headers=stranger
        ).status_code
        == 404
    )

    kinds = [a["kind"] for a in httpx.get(f"{server.url}/api/projects/{pid}/activity", headers=h).json()]
    assert kinds.count("asset.uploaded") == 2
    assert "asset.thumbnail.ready" in kinds
    assert "asset.thumbnail.failed" in kinds


def test_a_replaced_asset_marks_the_nodes_using_it_stale_and_tells_their_owners(server: LiveServer) -> None:
    owner_h, owner = account(server, "Olive")
    editor_h, _ = account(server, "Eddie")
    project = httpx.post(f"{server.url}/api/projects", headers=owner_h, json={"name": "Stale"}).json()
    pid, root = project["id"], server.workspace / project["path"]
    httpx.post(f"{server.url}/api/projects/{pid}/members", headers=owner_h,
               json={"email": httpx.get(f"{server.url}/api/me", headers=editor_h).json()["email"], "role": "editor"})  # fmt: skip
    asset = httpx.post(f"{server.url}/api/projects/{pid}/assets", headers=owner_h,
                       files={"file": ("hero.png", png((200, 200, 0)), "image/png")}).json()  # fmt: skip
    new = png((10, 220, 10))

    async def run() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        async with SyncClient(server.url.replace("http", "ws"), pid, owner_h["Authorization"][7:]) as client:
            set_path(client.doc, ["canvases", "main", "nodes", "hero-ref"],
                     {"type": "image.reference", "x": 0, "y": 0, "params": {"image": asset["id"]}})  # fmt: skip
            set_path(client.doc, ["canvases", "main", "nodes", "by-path"],
                     {"type": "image.diffusion", "x": 0, "y": 0, "params": {"init_image": asset["path"]}})  # fmt: skip
            set_path(client.doc, ["canvases", "main", "nodes", "unrelated"],
                     {"type": "note", "x": 0, "y": 0, "params": {"text": "hero.png is nice"}})  # fmt: skip
            await client.flushed()
            nodes = client.doc.get("canvases", type=Map)["main"]["nodes"]
            assert await eventually(
                lambda: "unrelated" in doc_to_state(client.doc)["canvases"]["main"]["nodes"]
            )
            async with listening(server, owner_h["Authorization"][7:]) as seen:
                async with httpx.AsyncClient() as c:
                    r = await c.put(f"{server.url}/api/projects/{pid}/assets/{asset['id']}/file", headers=editor_h,
                                    files={"file": ("hero.png", new, "image/png")})  # fmt: skip
                assert r.status_code == 200, r.text
                assert await eventually(lambda: "stale" in nodes["hero-ref"] and "stale" in nodes["by-path"])
                assert await eventually(lambda: len([e for e in seen if e["type"] == "node.stale"]) == 2)
            return r.json(), seen, doc_to_state(client.doc)

    replaced, seen, state = asyncio.run(run())
    assert replaced["sha256"] != asset["sha256"]
    assert replaced["path"] == asset["path"]
    main = state["canvases"]["main"]["nodes"]
    assert main["hero-ref"]["stale"]["reason"] == "Eddie replaced hero.png"
    assert main["hero-ref"]["stale"]["asset"] == asset["id"]
    assert "stale" not in main["unrelated"]
    assert state["assets"][asset["id"]]["sha256"] == replaced["sha256"]
    stale_events = [e for e in seen if e["type"] == "node.stale"]
    assert sorted(e["node"] for e in stale_events) == ["by-path", "hero-ref"]
    assert all(e["owners"] == [owner["id"]] for e in stale_events)  # no one ran tasks for them: the owner
    assert any(e["type"] == "asset.changed" for e in seen)
    feed = httpx.get(f"{server.url}/api/projects/{pid}/activity", headers=owner_h).json()
    assert any(a["kind"] == "node.stale" and "out of date" in a["summary"] for a in feed)

    # The new version is committed (as an LFS object) by the person who replaced it.
    assert (root / asset["path"]).read_bytes() == new
    deadline = time.monotonic() + 10
    while git(root, "status", "--porcelain") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert git(root, "status", "--porcelain") == ""
    assert "Eddie" in git(root, "log", "-1", "--format=%an", "--", asset["path"])
    git(root, "lfs", "fsck")
    assert (
        httpx.get(f"{server.url}/api/projects/{pid}/assets/{asset['id']}/file", headers=owner_h).content
        == new
    )

    r = httpx.put(f"{server.url}/api/projects/{pid}/assets/{asset['id']}/file", headers=owner_h,
                  files={"file": ("hero.wav", b"RIFF", "audio/wav")})  # fmt: skip
    assert r.status_code == 422
    assert "cannot replace it" in r.json()["detail"]


def test_an_asset_edited_on_disk_marks_its_nodes_stale(server: LiveServer) -> None:
    h, _ = account(server, "Dora")
    project = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "On disk"}).json()
    pid, root = project["id"], server.workspace / project["path"]
    asset = httpx.post(f"{server.url}/api/projects/{pid}/assets", headers=h, data={"folder": "Locations"},
                       files={"file": ("pier.png", png((90, 90, 90)), "image/png")}).json()  # fmt: skip

    async def run() -> dict[str, Any]:
        async with SyncClient(server.url.replace("http", "ws"), pid, h["Authorization"][7:]) as client:
            set_path(client.doc, ["canvases", "main", "nodes", "pier"],
                     {"type": "image.reference", "x": 0, "y": 0, "params": {"image": asset["id"]}})  # fmt: skip
            await client.flushed()
            await asyncio.sleep(0.5)
            (root / asset["path"]).write_bytes(png((250, 120, 0)))  # another tool saves over it
            nodes = client.doc.get("canvases", type=Map)["main"]["nodes"]
            assert await eventually(lambda: "stale" in nodes["pier"]), "the edit on disk was not noticed"
            return doc_to_state(client.doc)

    state = asyncio.run(run())
    assert state["canvases"]["main"]["nodes"]["pier"]["stale"]["reason"] == "pier.png was edited on disk"
    assert state["assets"][asset["id"]]["sha256"] != asset["sha256"]
    feed = httpx.get(f"{server.url}/api/projects/{pid}/activity", headers=h).json()
    assert any(a["kind"] == "asset.changed" and "edited on disk" in a["summary"] for a in feed)
    # The preview is made again from the new file.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        tasks = httpx.get(f"{server.url}/api/projects/{pid}/tasks", headers=h).json()
        thumbs = [t for t in tasks if t["kind"] == "asset.thumbnail" and t["state"] == "succeeded"]
        if len(thumbs) == 2:
            break
        time.sleep(0.1)
    assert len(thumbs) == 2, tasks
    thumb = httpx.get(f"{server.url}/api/projects/{pid}/assets/{asset['id']}/thumbnail", headers=h)
    assert Image.open(io.BytesIO(thumb.content)).convert("RGB").getpixel((5, 5)) == (250, 120, 0)


def test_the_embedded_workers_hand_results_back_in_process(server: LiveServer) -> None:
    """Embedded path: the server's own worker hands an export back in process (one function)."""
    h, _ = account(server, "Ivo")
    pid = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "Exported"}).json()["id"]
    r = httpx.post(f"{server.url}/api/projects/{pid}/tasks", headers=h,
                   json={"kind": "project.export", "params": {"format": "bundle"}})  # fmt: skip
    deadline = time.monotonic() + 20
    while (t := httpx.get(f"{server.url}/api/tasks/{r.json()['id']}", headers=h).json())["state"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert t["state"] == "succeeded", t["error"]
    assert t["outputs"][0]["role"] == "export"
    assert t["outputs"][0]["path"].startswith("06_Exports/")
