"""Scale-out: two `studio serve` processes (A and B) on one data folder and workspace, sharing a
Redis, with a `studio worker` for the cpu queue. Whatever is caused through one server reaches the
/events listeners of both, each event once, and the activity feed records it once; browsers of
one project on different servers edit one document (sync/SPEC.md S1)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image
from pycrdt import Array, Map

from sync.client import SyncClient
from sync.db import Index
from sync.docmodel import doc_to_state, set_path
from tasks.outputs import Output, http_delivery
from tasks.store import TaskStore
from tasks.webhooks import event_name
from tests.conftest import LiveServer, git, start_server, start_worker, stop_server, stop_worker
from tests.integration.test_webhooks import Receiver


@dataclass
class Pair:
    a: LiveServer
    b: LiveServer
    tmp: Path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("scale")
    url = redis_url.rsplit("/", 1)[0] + "/9"  # a database of its own for the task queues
    env = {"STUDIO_BROKER_URL": url, "STUDIO_SEED_SAMPLES": "false", "STUDIO_RATE_LIMIT_AUTH": "1000"}
    a = start_server(tmp, log_name="server-a.log", **env)
    b = start_server(tmp, log_name="server-b.log", **env)
    worker = start_worker(tmp, url, STUDIO_SERVER_URL=a.url)
    yield Pair(a, b, tmp)
    stop_worker(worker)
    stop_server(b)
    stop_server(a)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (120, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def account(server: LiveServer, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    body = {"email": f"{name.lower()}-{time.monotonic_ns()}@scale.example.org", "password": "long enough secret",
            "name": name}  # fmt: skip
    r = httpx.post(f"{server.url}/api/auth/register", json=body)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}, {**r.json()["user"], "email": body["email"]}


async def eventually(check: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


@contextlib.asynccontextmanager
async def listening(server: LiveServer, token: str, project_id: str) -> Any:
    """The /events messages about ``project_id`` that reach a listener on ``server``."""
    seen: list[dict[str, Any]] = []
    async with websockets.connect(f"{server.url.replace('http', 'ws')}/events?token={token}") as ws:

        async def pump() -> None:
            async for message in ws:
                event = json.loads(message)
                if event.get("project_id") == project_id:
                    seen.append(event)

        reader = asyncio.get_running_loop().create_task(pump())
        try:
            yield seen
        finally:
            reader.cancel()


def kinds(seen: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(e["type"]) for e in seen)


def test_events_caused_through_one_server_reach_listeners_of_both_once(
    pair: Pair, receiver: Receiver
) -> None:
    a, b = pair.a, pair.b
    h, _ = account(a, "Olive")
    token = h["Authorization"][7:]
    pid = httpx.post(f"{a.url}/api/projects", headers=h, json={"name": "Two Servers"}).json()["id"]
    secret = (a.data_dir / "worker.secret").read_text().strip()
    r = httpx.post(
        f"{b.url}/api/projects/{pid}/webhooks", headers=h, json={"url": receiver.url, "events": ["*"]}
    )
    assert r.status_code == 201, r.text

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        async with listening(a, token, pid) as on_a, listening(b, token, pid) as on_b:
            await asyncio.sleep(0.3)  # both listeners registered
            async with httpx.AsyncClient(base_url=a.url, headers=h, timeout=30) as api_a:
                # Given an asset uploaded through A (its thumbnail made by the worker) …
                r = await api_a.post(
                    f"/api/projects/{pid}/assets", files={"file": ("hero.png", png((200, 0, 0)), "image/png")}
                )
                assert r.status_code == 201, r.text
                asset = r.json()
                assert await eventually(lambda: kinds(on_b)["asset.thumbnail.ready"] == 1), kinds(on_b)
                # … and a node that uses it, edited through A's sync socket,
                async with SyncClient(a.url.replace("http", "ws"), pid, token) as client:
                    set_path(client.doc, ["canvases", "main", "nodes", "hero-gen"],
                             {"type": "image.diffusion", "x": 0, "y": 0, "params": {"init_image": asset["id"]}})  # fmt: skip
                    await client.flushed()
                # When the asset is replaced through A, its node goes stale;
                r = await api_a.put(f"/api/projects/{pid}/assets/{asset['id']}/file",
                                    files={"file": ("hero.png", png((0, 200, 0)), "image/png")})  # fmt: skip
                assert r.status_code == 200, r.text
                # a GPU worker hands a take of the node back through A;
                r = await api_a.post(f"/api/projects/{pid}/tasks", json={"kind": "image.diffusion",
                                     "params": {"prompt": "a lighthouse", "target": {"canvas": "main", "node": "hero-gen"}}})  # fmt: skip
                assert r.status_code == 202, r.text
                task_id = TaskStore(Index(a.data_dir / "studio.db")).claim_next("gpu")
                assert task_id == r.json()["id"]
                await asyncio.to_thread(http_delivery(a.url, secret), task_id, [Output("take.png", "image/png", "take",
                                        data=png((0, 0, 200)), meta={"seed": 1})])  # fmt: skip
            # and a task queued through A is cancelled through B.
            async with httpx.AsyncClient(headers=h, timeout=30) as api:
                queued = (await api.post(f"{a.url}/api/projects/{pid}/tasks",
                                         json={"kind": "image.diffusion", "params": {"prompt": "later"}})).json()  # fmt: skip
                r = await api.post(f"{b.url}/api/tasks/{queued['id']}/cancel")
                assert r.json()["state"] == "cancelled", r.text

            def complete(seen: list[dict[str, Any]]) -> bool:
                k = kinds(seen)
                return (k["take.created"] >= 1 and k["node.stale"] >= 1 and k["task.cancelled"] >= 1
                        and k["asset.thumbnail.ready"] >= 2 and k["task.succeeded"] >= 2)  # fmt: skip

            assert await eventually(lambda: complete(on_a) and complete(on_b)), (kinds(on_a), kinds(on_b))
            await asyncio.sleep(1.5)  # room for any duplicate to arrive
            return list(on_a), list(on_b), asset

    on_a, on_b, asset = asyncio.run(run())
    # Then each listener heard every event once, and both heard the same events.
    for seen in (on_a, on_b):
        ids = Counter(e["id"] for e in seen)
        assert all(n == 1 for n in ids.values()), [e["type"] for e in seen if ids[e["id"]] > 1]
    assert on_a
    assert {e["id"] for e in on_a} == {e["id"] for e in on_b}
    k = kinds(on_b)
    assert k["asset.uploaded"] == 1
    assert k["asset.changed"] == 1  # not told again by B's own file watcher
    assert k["node.stale"] == 1
    assert k["take.created"] == 1
    assert k["task.cancelled"] == 1
    stale = next(e for e in on_b if e["type"] == "node.stale")
    assert (stale["node"], stale["asset"]) == ("hero-gen", asset["id"])
    assert "replaced" in stale["reason"]

    # And the activity feed, asked of either server, records each event once.
    feed = httpx.get(f"{b.url}/api/projects/{pid}/activity", headers=h).json()
    assert feed == httpx.get(f"{a.url}/api/projects/{pid}/activity", headers=h).json()
    recorded = Counter(line["event_id"] for line in feed if line["event_id"])
    assert all(n == 1 for n in recorded.values()), recorded
    heard = {e["id"]: e["type"] for e in on_b}
    for kind in ("asset.uploaded", "asset.changed", "node.stale", "asset.thumbnail.ready", "task.succeeded",
                 "task.cancelled"):  # fmt: skip
        events = {i for i, t in heard.items() if t == kind}
        lines = {line["event_id"] for line in feed if line["kind"] == kind}
        assert events == lines, (kind, events, lines)

    # And each task and commit event is POSTed to the project's webhook once, named by its id.
    wanted = {i for i, t in heard.items() if event_name(t) is not None}
    got = receiver.wait(lambda got: {r.headers["x-studio-delivery"] for r in got} >= wanted)
    time.sleep(1.0)  # room for any duplicate delivery
    deliveries = Counter(r.headers["x-studio-delivery"] for r in got)
    assert all(n == 1 for n in deliveries.values()), deliveries
    assert {r.headers["x-studio-event"] for r in got} >= {"task.queued", "task.running", "task.succeeded",
                                                           "task.cancelled", "commit"}  # fmt: skip


def nodes_of(doc: Any) -> dict[str, Any]:
    return dict(doc_to_state(doc)["canvases"].get("main", {}).get("nodes", {}))


def chat_of(doc: Any) -> list[str]:
    return [str(m.get("text")) for m in doc_to_state(doc)["chat"]]


def say(doc: Any, text: str) -> None:
    doc.get("chat", type=Array).append(
        Map({"id": text, "author": "t", "role": "user", "text": text, "time": "t"})
    )


def test_s1_two_browsers_on_two_servers_edit_one_project_and_converge(pair: Pair) -> None:
    a, b = pair.a, pair.b
    h, _ = account(a, "Sam")
    token = h["Authorization"][7:]
    project = httpx.post(f"{a.url}/api/projects", headers=h, json={"name": "Both Sides"}).json()
    pid, root = project["id"], pair.tmp / "workspace" / project["path"]

    async def run() -> tuple[dict[str, Any], float]:
        async with SyncClient(a.url.replace("http", "ws"), pid, token) as on_a, \
                SyncClient(b.url.replace("http", "ws"), pid, token) as on_b:  # fmt: skip
            # An edit taken by server A reaches the browser on server B, without waiting for Git.
            started = time.monotonic()
            set_path(on_a.doc, ["canvases", "main", "nodes", "n1"],
                     {"type": "image.diffusion", "x": 0, "y": 0, "params": {"steps": 20, "prompt": "dusk"}})  # fmt: skip
            await on_a.flushed()
            assert await eventually(lambda: "n1" in nodes_of(on_b.doc), 5)
            latency = time.monotonic() - started
            # And the other way, while both add chat messages and B keeps changing one value as
            # A's edits are written to Git: nothing is duplicated, nothing reverted.
            set_path(
                on_b.doc, ["canvases", "main", "nodes", "n2"], {"type": "note", "x": 5, "y": 5, "params": {}}
            )
            for i in range(6):
                say(on_a.doc, f"a{i}")
                say(on_b.doc, f"b{i}")
                set_path(on_a.doc, ["canvases", "main", "nodes", "n1", "x"], i)
                set_path(on_b.doc, ["canvases", "main", "nodes", "n1", "params", "steps"], 30 + i)
                await on_a.flushed()
                await on_b.flushed()
                await asyncio.sleep(0.4)  # past the materializer's quiet second now and then
            assert await eventually(lambda: doc_to_state(on_a.doc) == doc_to_state(on_b.doc), 10)
            await asyncio.sleep(3)  # both servers' materializers and file watchers have had their say
            assert doc_to_state(on_a.doc) == doc_to_state(on_b.doc)
            return doc_to_state(on_b.doc), latency

    state, latency = asyncio.run(run())
    assert latency < 1.0, f"{latency:.2f} s: that is the materializer's pace, not the relay's"
    main = state["canvases"]["main"]["nodes"]
    assert set(main) == {"n1", "n2"}
    assert (main["n1"]["x"], main["n1"]["params"]["steps"]) == (5, 35)
    assert sorted(m["text"] for m in state["chat"]) == sorted(
        [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)]
    )

    # A browser opening the project later, on either server, gets the same document,
    async def fresh(server: LiveServer) -> dict[str, Any]:
        async with SyncClient(server.url.replace("http", "ws"), pid, token) as client:
            return doc_to_state(client.doc)

    assert asyncio.run(fresh(a)) == state
    assert asyncio.run(fresh(b)) == state
    # the repository holds it, committed by the person (never as edits "on disk" of one server
    # seeing the other's files), and neither server merged the other's writes as outside edits.
    assert git(root, "status", "--porcelain") == ""
    canvas = json.loads((root / "02_Source_Creative/Canvases/main.json").read_text())
    assert canvas["nodes"]["n1"]["params"]["steps"] == 35
    assert "filesystem" not in git(root, "log", "--format=%an")
    for log in ("server-a.log", "server-b.log"):
        assert "outside_edit_merged" not in (pair.tmp / log).read_text()


def test_s2_people_on_two_servers_see_each_other_come_and_go(pair: Pair) -> None:
    a, b = pair.a, pair.b
    h, _ = account(a, "Ann")
    token = h["Authorization"][7:]
    pid = httpx.post(f"{a.url}/api/projects", headers=h, json={"name": "Presence"}).json()["id"]

    def names(client: SyncClient) -> set[str]:
        return {json.loads(state)["user"]["name"] for state in client.peers.values()}

    async def run() -> None:
        ann = SyncClient(a.url.replace("http", "ws"), pid, token)
        await ann.connect()
        await ann.set_awareness(json.dumps({"user": {"name": "Ann"}}), 1)
        await asyncio.sleep(0.3)
        # Ben opens the project on the other server after Ann: he is told who is there already,
        async with SyncClient(b.url.replace("http", "ws"), pid, token) as ben:
            assert await eventually(lambda: names(ben) == {"Ann"}, 5), ben.peers
            # and Ann hears of him,
            await ben.set_awareness(json.dumps({"user": {"name": "Ben"}, "cursor": [1, 2]}), 1)
            assert await eventually(lambda: names(ann) == {"Ben"}, 5), ann.peers
            # and when Ann leaves, Ben sees her go (not 30 s later).
            await ann.close()
            assert await eventually(lambda: names(ben) == set(), 3), ben.peers

    asyncio.run(run())


def test_r4_a_project_trashed_through_one_server_closes_its_peers_on_the_other(pair: Pair) -> None:
    a, b = pair.a, pair.b
    h, _ = account(a, "Tess")
    token = h["Authorization"][7:]
    project = httpx.post(f"{a.url}/api/projects", headers=h, json={"name": "Short Lived"}).json()
    pid = project["id"]

    async def run() -> int | None:
        async with SyncClient(b.url.replace("http", "ws"), pid, token) as on_b:
            set_path(on_b.doc, ["story", "logline"], "before the trash")
            await on_b.flushed()
            async with httpx.AsyncClient(headers=h) as api:
                r = await api.delete(f"{a.url}/api/projects/{pid}")
            assert r.status_code == 204, r.text
            assert await eventually(lambda: on_b.closed is not None, 5), "the peer on B was left open"
            closed = on_b.closed
            return closed.code if closed is not None else None

    assert asyncio.run(run()) == 4404
    # Nothing was written back into the old folder by B after the project moved to the trash,
    assert not (pair.tmp / "workspace" / project["path"]).exists()
    # and the edit made through B just before is committed in the trashed repository.
    row = (
        Index(a.data_dir / "studio.db")
        .db.execute("SELECT trash_path FROM projects WHERE id = ?", [pid])
        .fetchone()
    )
    trashed = pair.tmp / "workspace" / row[0]
    assert "before the trash" in git(trashed, "show", "HEAD:02_Source_Creative/story.json")
