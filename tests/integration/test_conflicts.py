"""Conflicts a person can see (SPEC C3): the value that lost is in the activity, one step from back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from pycrdt import Doc, Map

from sync.client import SyncClient
from tests.conftest import LiveServer


async def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


def register(url: str, name: str) -> dict[str, Any]:
    body = {"email": f"{name.lower()}@example.org", "password": "long enough secret", "name": name}
    return dict(httpx.post(f"{url}/api/auth/register", json=body).json())


def test_c3_the_losing_value_is_kept_in_the_activity_with_a_one_step_restore(live_server: LiveServer) -> None:
    url, ws = live_server.url, live_server.url.replace("http", "ws")
    olga, ed = register(url, "Olga"), register(url, "Ed")
    ho = {"Authorization": f"Bearer {olga['token']}"}
    pid = httpx.post(f"{url}/api/projects", headers=ho, json={"name": "Contested"}).json()["id"]
    httpx.post(
        f"{url}/api/projects/{pid}/members", headers=ho, json={"email": "ed@example.org", "role": "editor"}
    )

    def steps(client: SyncClient) -> Any:
        node = client.doc.get("canvases", type=Map)["main"]["nodes"].get("sampler")
        return node["params"]["steps"] if node is not None else None

    async def run() -> None:
        async with SyncClient(ws, pid, olga["token"]) as a, SyncClient(ws, pid, ed["token"]) as b:
            a.doc.get("canvases", type=Map)["main"]["nodes"]["sampler"] = Map(
                {"type": "image.diffusion", "x": 0, "y": 0, "params": Map({"steps": 20})}
            )
            await a.flushed()
            assert await eventually(lambda: steps(b) == 20)
            b.doc.get("canvases", type=Map)["main"]["nodes"]["sampler"]["params"]["steps"] = 30
            await b.flushed()
            assert await eventually(lambda: steps(a) == 30)

            async with httpx.AsyncClient() as http:
                activity = (await http.get(f"{url}/api/projects/{pid}/activity", headers=ho)).json()
            conflict = next(x for x in activity if x["kind"] == "conflict")
            assert conflict["detail"]["path"] == ["canvases", "main", "nodes", "sampler", "params", "steps"]
            assert conflict["detail"]["lost"] == 20
            assert conflict["detail"]["lost_by"] == "Olga"
            assert conflict["detail"]["kept_by"] == "Ed"
            assert "Ed replaced Olga's" in conflict["summary"]

            async with httpx.AsyncClient() as http:
                r = await http.post(f"{url}/api/projects/{pid}/activity/{conflict['id']}/restore", headers=ho)
            assert r.status_code == 200, r.text
            assert await eventually(lambda: steps(a) == 20 and steps(b) == 20)

    asyncio.run(run())


def test_c3_one_person_changing_their_own_value_is_no_conflict(live_server: LiveServer) -> None:
    url, ws = live_server.url, live_server.url.replace("http", "ws")
    guest = httpx.post(f"{url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    pid = httpx.post(f"{url}/api/projects", headers=h, json={"name": "Mine"}).json()["id"]

    async def run() -> None:
        async with SyncClient(ws, pid, guest["token"]) as a:
            meta = a.doc.get("meta", type=Map)
            for value in ("one", "two", "three"):
                meta["template_note"] = value
                await a.flushed()
            await asyncio.sleep(0.3)

    asyncio.run(run())
    activity = httpx.get(f"{url}/api/projects/{pid}/activity", headers=h).json()
    assert not [x for x in activity if x["kind"] == "conflict"]


def test_c3_a_write_that_loses_the_merge_is_kept_too(live_server: LiveServer) -> None:
    """Yjs orders concurrent writes to one key by client id: Edmund's write, made offline and
    arriving after Olive's, never shows in the document. It is still in the activity, restorable."""
    url, ws = live_server.url, live_server.url.replace("http", "ws")
    olga, ed = register(url, "Olive"), register(url, "Edmund")
    ho = {"Authorization": f"Bearer {olga['token']}"}
    pid = httpx.post(f"{url}/api/projects", headers=ho, json={"name": "Silent Loss"}).json()["id"]
    httpx.post(
        f"{url}/api/projects/{pid}/members",
        headers=ho,
        json={"email": "edmund@example.org", "role": "editor"},
    )

    def params(client: SyncClient) -> Any:
        node = client.doc.get("canvases", type=Map)["main"]["nodes"].get("sampler")
        return node["params"] if node is not None else None

    async def run() -> None:
        # Edmund's client id is the lower one: his concurrent write is the one Yjs discards.
        a = SyncClient(ws, pid, olga["token"], doc=Doc(client_id=4_000_000_000))
        b = SyncClient(ws, pid, ed["token"], doc=Doc(client_id=7))
        async with a, b:
            a.doc.get("canvases", type=Map)["main"]["nodes"]["sampler"] = Map(
                {"type": "image.diffusion", "x": 0, "y": 0, "params": Map({"steps": 20, "seed": 1})}
            )
            await a.flushed()
            assert await eventually(lambda: params(b) is not None and params(b)["steps"] == 20)
            await b.disconnect()
            params(b)["steps"] = 40  # offline
            params(a)["steps"] = 30
            await a.flushed()
            await b.connect()
            await b.flushed()
            assert await eventually(lambda: params(b)["steps"] == 30)
            assert params(a)["steps"] == 30  # Edmund's 40 lost the merge everywhere

            async with httpx.AsyncClient() as http:
                activity = (await http.get(f"{url}/api/projects/{pid}/activity", headers=ho)).json()
            conflicts = [x for x in activity if x["kind"] == "conflict"]
            assert len(conflicts) == 1, conflicts
            detail = conflicts[0]["detail"]
            assert detail["path"] == ["canvases", "main", "nodes", "sampler", "params", "steps"]
            assert (detail["lost"], detail["lost_by"], detail["kept_by"]) == (40, "Edmund", "Olive")

            async with httpx.AsyncClient() as http:
                r = await http.post(
                    f"{url}/api/projects/{pid}/activity/{conflicts[0]['id']}/restore", headers=ho
                )
            assert r.status_code == 200, r.text
            assert await eventually(lambda: params(a)["steps"] == 40 and params(b)["steps"] == 40)
            assert params(a)["seed"] == 1  # nothing else was touched

    asyncio.run(run())
