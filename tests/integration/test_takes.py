"""Takes: results handed back through the server's upload route become numbered Git LFS takes,
recorded in the live doc (every client sees them) and committed with the requester as author.

The studio runs with Redis and a separate `studio worker` for the cpu queue; the gpu queue has no
worker process, so the test itself is the GPU worker on "another machine": it claims the task
like `studio worker` does and hands the image back with the worker's own HTTP delivery.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image
from pycrdt import Map

from sync.client import SyncClient
from sync.db import Index
from sync.docmodel import doc_to_state, set_path
from tasks.outputs import DeliveryRefused, Output, http_delivery, upload_token
from tasks.store import TaskStore
from tests.conftest import ROOT, LiveServer, git, start_server, stop_server


@dataclass
class Studio:
    server: LiveServer
    secret: str

    @property
    def ws(self) -> str:
        return self.server.url.replace("http", "ws")

    def claim(self, queue: str = "gpu") -> str:
        task_id = TaskStore(Index(self.server.data_dir / "studio.db")).claim_next(queue)
        assert task_id is not None, f"nothing waiting in {queue}"
        return task_id

    def deliver(self, task_id: str, outputs: list[Output]) -> list[dict[str, Any]]:
        return http_delivery(self.server.url, self.secret)(task_id, outputs)


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Studio]:
    tmp = tmp_path_factory.mktemp("takes")
    redis_url = redis_url.rsplit("/", 1)[0] + "/1"  # a database of its own: no messages of other modules
    # The test is the GPU worker here: it claims tasks and sends no heartbeats, and some it never
    # finishes. The watchdog must not hand those back to the queue (after 30 s on a busy machine)
    # where a later claim of this module would pick one up instead of its own.
    server = start_server(
        tmp, STUDIO_BROKER_URL=redis_url, STUDIO_SEED_SAMPLES="false", STUDIO_RATE_LIMIT_AUTH="1000",
        STUDIO_TASK_STALE_S="3600",
    )  # fmt: skip
    env = {**os.environ, "STUDIO_BROKER_URL": redis_url, "STUDIO_DATA_DIR": str(server.data_dir),
           "WORKSPACE_ROOT": str(server.workspace), "STUDIO_SERVER_URL": server.url}  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--queues", "cpu", "--threads", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    # The server made the worker secret on its first start; a worker on this machine reads it too.
    yield Studio(server, (server.data_dir / "worker.secret").read_text().strip())
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(timeout=20)
    stop_server(server)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (96, 54)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def register(studio: Studio, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    email = f"{name.split()[0].lower()}-{time.monotonic_ns()}@takes.example.org"
    r = httpx.post(f"{studio.server.url}/api/auth/register", json={"email": email, "password": "long enough secret",
                                                                   "name": name})  # fmt: skip
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}, {**r.json()["user"], "email": email}


def new_project(studio: Studio, h: dict[str, str], name: str) -> dict[str, Any]:
    r = httpx.post(f"{studio.server.url}/api/projects", headers=h, json={"name": name})
    assert r.status_code == 201, r.text
    return dict(r.json())


def enqueue(studio: Studio, h: dict[str, str], pid: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(
        f"{studio.server.url}/api/projects/{pid}/tasks", headers=h, json={"kind": kind, "params": params}
    )
    assert r.status_code == 202, r.text
    return dict(r.json())


def generate(studio: Studio, h: dict[str, str], pid: str, target: dict[str, str], colour: tuple[int, int, int],
             seed: int = 7) -> list[dict[str, Any]]:  # fmt: skip
    """What a GPU worker does: claim the queued diffusion task, hand its image back."""
    enqueue(
        studio, h, pid, "image.diffusion", {"prompt": "a lighthouse at dusk", "target": target, "seed": seed}
    )
    task_id = studio.claim()
    return studio.deliver(task_id, [Output("take.png", "image/png", "take", data=png(colour),
                                           meta={"seed": seed, "model": "tiny-sd"})])  # fmt: skip


async def eventually(check: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


def test_a_worker_hands_back_a_take_every_client_sees_it_and_git_holds_it_as_lfs(
    studio: Studio, tmp_path: Path
) -> None:
    h, ada = register(studio, "Ada Lovelace")
    project = new_project(studio, h, "Lighthouse")
    pid, root = project["id"], studio.server.workspace / project["path"]
    red, blue = png((200, 30, 30)), png((20, 40, 220))
    one_task = ""

    async def run() -> list[list[dict[str, Any]]]:
        async with SyncClient(studio.ws, pid, h["Authorization"][7:]) as client:
            set_path(client.doc, ["canvases", "main", "nodes", "hero-gen"],
                     {"type": "image.diffusion", "x": 10, "y": 20, "params": {"prompt": "a lighthouse"}})  # fmt: skip
            await client.flushed()
            first = await asyncio.to_thread(generate, studio, h, pid, {"canvas": "main", "node": "hero-gen"},
                                            (200, 30, 30))  # fmt: skip
            takes = client.doc.get("takes", type=Map)
            assert await eventually(lambda: len(takes) == 1), "the take never reached the connected client"
            second = await asyncio.to_thread(generate, studio, h, pid, {"canvas": "main", "node": "hero-gen"},
                                             (20, 40, 220), 8)  # fmt: skip
            assert await eventually(lambda: len(takes) == 2)
            seen = doc_to_state(client.doc)["takes"]
        by_number = {t["number"]: t for t in seen.values()}
        assert by_number[1]["path"] == "03_Renders/main/hero-gen/take_0001.png"
        assert by_number[2]["path"] == "03_Renders/main/hero-gen/take_0002.png"
        one = by_number[1]
        assert (one["canvas"], one["node"], one["seed"], one["model"]) == ("main", "hero-gen", 7, "tiny-sd")
        assert one["params"]["prompt"] == "a lighthouse at dusk"
        assert one["requester"] == {"id": ada["id"], "name": "Ada Lovelace"}
        nonlocal one_task
        one_task = one["task"]
        assert one["duration_s"] >= 0
        assert one["created"]
        assert one["task"]
        return [first, second]

    first, second = asyncio.run(run())
    assert [o["path"] for o in first + second] == [
        "03_Renders/main/hero-gen/take_0001.png", "03_Renders/main/hero-gen/take_0002.png"]  # fmt: skip
    assert (root / first[0]["path"]).read_bytes() == red
    assert (root / second[0]["path"]).read_bytes() == blue

    # Committed as the requester, as Git LFS objects the real tools accept.
    assert git(root, "log", "-1", "--format=%an <%ae>").strip() == f"Ada Lovelace <{ada['email']}>"
    assert "Take 2 of hero-gen" in git(root, "log", "-1", "--format=%s")
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "show", f"HEAD:{first[0]['path']}").startswith(
        "version https://git-lfs.github.com/spec/v1"
    )
    lfs_files = git(root, "lfs", "ls-files", "--name-only").split()
    assert {first[0]["path"], second[0]["path"]} <= set(lfs_files)
    git(root, "lfs", "fsck")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True, capture_output=True)
    assert (clone / second[0]["path"]).read_bytes() == blue  # git-lfs checked the real image out
    assert '"take_0002.png"' not in (clone / "04_Project_Files/takes.json").read_text()  # paths, not names
    assert "03_Renders/main/hero-gen/take_0002.png" in (clone / "04_Project_Files/takes.json").read_text()

    # Served to members with ETag and Range; invisible to others.
    url = f"{studio.server.url}/api/projects/{pid}/takes"
    listed = httpx.get(url, headers=h, params={"canvas": "main", "node": "hero-gen"}).json()
    assert [t["number"] for t in listed] == [2, 1]
    file_url = f"{studio.server.url}{listed[0]['url']}"
    whole = httpx.get(file_url, headers=h)
    assert whole.status_code == 200
    assert whole.content == blue
    assert whole.headers["etag"] == f'"{listed[0]["sha256"]}"'
    part = httpx.get(file_url, headers={**h, "Range": "bytes=0-7"})
    assert (part.status_code, part.content) == (206, blue[:8])
    assert httpx.get(file_url, headers={**h, "If-None-Match": whole.headers["etag"]}).status_code == 304
    stranger, _ = register(studio, "Mallory Stranger")
    assert httpx.get(file_url, headers=stranger).status_code == 404
    assert httpx.get(file_url).status_code == 401

    log = (studio.server.data_dir.parent / "server.log").read_text()
    assert "/outputs" in log  # the uploads were logged, without their credentials
    assert studio.secret not in log
    assert upload_token(studio.secret, one_task) not in log


def test_take_numbers_are_never_used_twice(studio: Studio) -> None:
    h, _ = register(studio, "Grace Hopper")
    project = new_project(studio, h, "Numbers")
    pid, root = project["id"], studio.server.workspace / project["path"]
    target = {"scene": "opening", "shot": "wide"}
    generate(studio, h, pid, target, (10, 10, 10))
    second = generate(studio, h, pid, target, (20, 20, 20))
    assert second[0]["path"] == "03_Renders/opening/wide/take_0002.png"

    async def forget_take_2() -> None:
        async with SyncClient(studio.ws, pid, h["Authorization"][7:]) as client:
            takes = client.doc.get("takes", type=Map)
            del takes[second[0]["take"]]
            await client.flushed()

    asyncio.run(forget_take_2())
    (root / second[0]["path"]).unlink()  # gone from the doc and the disk, still in the history
    deadline = time.monotonic() + 10
    while "take_0002" in (root / "04_Project_Files/takes.json").read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    third = generate(studio, h, pid, target, (30, 30, 30))
    assert third[0]["path"] == "03_Renders/opening/wide/take_0003.png"
    other = generate(studio, h, pid, {"scene": "opening", "shot": "close"}, (40, 40, 40))
    assert other[0]["path"] == "03_Renders/opening/close/take_0001.png"  # numbering is per node


def test_uploads_without_the_task_token_or_for_a_cancelled_task_are_refused(studio: Studio) -> None:
    h, _ = register(studio, "Alan Turing")
    project = new_project(studio, h, "Refusals")
    pid, root = project["id"], studio.server.workspace / project["path"]
    enqueue(studio, h, pid, "image.diffusion", {"prompt": "x", "target": {"canvas": "main", "node": "n1"}})
    task_id = studio.claim()
    out = Output("take.png", "image/png", "take", data=png((1, 2, 3)))

    with pytest.raises(DeliveryRefused, match="STUDIO_WORKER_SECRET differs"):
        http_delivery(studio.server.url, "not-the-secret-of-this-studio")(task_id, [out])
    # A token is good for its own task only, and a sign-in token is no upload token.
    r = httpx.post(f"{studio.server.url}/api/tasks/{task_id}/outputs",
                   headers={"Authorization": f"Bearer {upload_token(studio.secret, 'another-task')}"},
                   data={"manifest": "[]"})  # fmt: skip
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    r = httpx.post(f"{studio.server.url}/api/tasks/{task_id}/outputs", headers=h, data={"manifest": "[]"})
    assert r.status_code == 401

    with pytest.raises(DeliveryRefused, match="06_Exports"):
        studio.deliver(task_id, [Output("x.json", "application/json", "export", data=b"{}",
                                        dest="02_Source_Creative/story.json")])  # fmt: skip

    assert (
        httpx.post(f"{studio.server.url}/api/tasks/{task_id}/cancel", headers=h).json()["state"] == "running"
    )
    with pytest.raises(DeliveryRefused) as refused:
        studio.deliver(task_id, [out])
    assert refused.value.cancelled
    assert not (root / "03_Renders" / "main").exists()  # nothing of the cancelled task was kept
    assert httpx.get(f"{studio.server.url}/api/projects/{pid}/takes", headers=h).json() == []


def test_a_target_that_does_not_say_where_is_422(studio: Studio) -> None:
    h, _ = register(studio, "Katherine Johnson")
    pid = new_project(studio, h, "Targets")["id"]
    for target in (
        {"canvas": "main"},
        {"canvas": "main", "node": "a", "scene": "s", "shot": "b"},
        {"shot": "b"},
    ):
        r = httpx.post(f"{studio.server.url}/api/projects/{pid}/tasks", headers=h,
                       json={"kind": "image.diffusion", "params": {"prompt": "x", "target": target}})  # fmt: skip
        assert r.status_code == 422, target
        assert "canvas and node, or scene and shot" in r.json()["detail"]


def test_the_storyboard_of_a_scene_shows_its_takes(studio: Studio) -> None:
    h, _ = register(studio, "Orson Welles")
    project = new_project(studio, h, "Boards")
    pid, root = project["id"], studio.server.workspace / project["path"]

    async def write_scene() -> None:
        async with SyncClient(studio.ws, pid, h["Authorization"][7:]) as client:
            set_path(client.doc, ["story", "scenes", "harbour"], {
                "title": "Harbour at dawn", "order": 0, "synopsis": "The ferry leaves.",
                "shots": {"wide": {"description": "The whole harbour", "order": 0, "camera": "wide"},
                          "close": {"description": "A hand on a rope", "order": 1}},
            })  # fmt: skip
            await client.flushed()

    asyncio.run(write_scene())
    generate(studio, h, pid, {"scene": "harbour", "shot": "wide"}, (230, 20, 20))
    task = enqueue(studio, h, pid, "storyboard.sheet", {"scene": "harbour", "columns": 2})
    deadline = time.monotonic() + 30  # run by the separate `studio worker`, results via HTTP
    while time.monotonic() < deadline:
        task = httpx.get(f"{studio.server.url}/api/tasks/{task['id']}", headers=h).json()
        if task["state"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert task["state"] == "succeeded", task["error"]
    sheet = next(o for o in task["outputs"] if o["path"].endswith(".png"))
    assert sheet["path"].startswith("06_Exports/Storyboards/")
    image = Image.open(root / sheet["path"]).convert("RGB")
    colours = image.getcolors(maxcolors=image.width * image.height) or []
    reds = sum(n for n, (r, g, b) in colours if r > 200 and g < 60 and b < 60)
    assert reds > 0.05 * image.width * image.height  # the take fills the first panel
    assert not git(root, "status", "--porcelain", "06_Exports")  # exports stay out of Git


def test_a_new_take_clears_the_stale_mark_and_its_requester_hears_of_the_next_change(studio: Studio) -> None:
    owner_h, _ = register(studio, "Olive Owner")
    artist_h, artist = register(studio, "Arthur Artist")
    pid = new_project(studio, owner_h, "Dependencies")["id"]
    url = studio.server.url
    httpx.post(
        f"{url}/api/projects/{pid}/members",
        headers=owner_h,
        json={"email": artist["email"], "role": "editor"},
    )
    asset = httpx.post(f"{url}/api/projects/{pid}/assets", headers=owner_h,
                       files={"file": ("ref.png", png((5, 5, 5)), "image/png")}).json()  # fmt: skip

    def replace(colour: tuple[int, int, int]) -> None:
        r = httpx.put(f"{url}/api/projects/{pid}/assets/{asset['id']}/file", headers=owner_h,
                      files={"file": ("ref.png", png(colour), "image/png")})  # fmt: skip
        assert r.status_code == 200, r.text

    async def run() -> list[dict[str, Any]]:
        async with SyncClient(studio.ws, pid, artist_h["Authorization"][7:]) as client:
            set_path(client.doc, ["canvases", "main", "nodes", "styled"],
                     {"type": "image.diffusion", "x": 0, "y": 0, "params": {"init_image": asset["id"]}})  # fmt: skip
            await client.flushed()
            nodes = client.doc.get("canvases", type=Map)["main"]["nodes"]
            await asyncio.sleep(0.3)
            await asyncio.to_thread(replace, (6, 6, 6))
            assert await eventually(lambda: "stale" in nodes["styled"])
            await asyncio.to_thread(
                generate, studio, artist_h, pid, {"canvas": "main", "node": "styled"}, (7, 7, 7)
            )
            assert await eventually(lambda: "stale" not in nodes["styled"]), (
                "the new take left the node stale"
            )
            async with websockets.connect(f"{studio.ws}/events?token={artist_h['Authorization'][7:]}") as ws:
                await asyncio.to_thread(replace, (8, 8, 8))
                seen: list[dict[str, Any]] = []
                while not any(e["type"] == "node.stale" for e in seen):
                    seen.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=10)))
            assert await eventually(lambda: "stale" in nodes["styled"])
            return seen

    seen = asyncio.run(run())
    stale = next(e for e in seen if e["type"] == "node.stale")
    assert (stale["canvas"], stale["node"], stale["asset"]) == ("main", "styled", asset["id"])
    assert stale["owners"] == [artist["id"]]  # the one who generates for the node, not the project owner
    assert stale["reason"] == "Olive Owner replaced ref.png"
