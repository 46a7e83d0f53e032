"""A `studio worker` on "another machine": it shares no disk with the server.

The worker's STUDIO_DATA_DIR and WORKSPACE_ROOT are empty folders of its own; it knows only
STUDIO_BROKER_URL (a real redis-server), STUDIO_SERVER_URL, STUDIO_WORKER_SECRET and
STUDIO_MODELS_DIR (the tiny CPU pipeline). Everything it reads or writes about tasks and
projects goes through the server's worker API (/api/worker/…) and the upload route, and the
results land in the server's project repositories as they do with the embedded workers.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image

from sync.client import SyncClient
from sync.docmodel import set_path
from sync.model import files_to_state
from tasks.remote import WORKER_HEADER, worker_token
from tasks.storyboard import StoryboardParams, render_storyboard
from tests.conftest import ROOT, LiveServer, git, start_server, stop_server, stop_worker
from tests.pipelines import build_pipeline

DONE = {"task.succeeded", "task.failed", "task.cancelled"}


@dataclass
class Remote:
    server: LiveServer
    secret: str
    worker: subprocess.Popen[bytes]
    elsewhere: Path  # the worker's own (empty) data dir and workspace live here
    log: Path

    def headers(self) -> dict[str, str]:
        guest = httpx.post(f"{self.server.url}/api/auth/guest").json()
        return {"Authorization": f"Bearer {guest['token']}"}


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Remote]:
    url = redis_url.rsplit("/", 1)[0] + "/7"  # a database of its own: no turns of other modules
    secret = secrets.token_hex(24)
    models = tmp_path_factory.mktemp("models")
    build_pipeline(models / "tiny-sd")
    server = start_server(tmp_path_factory.mktemp("server"), STUDIO_BROKER_URL=url, STUDIO_WORKER_SECRET=secret,
                          STUDIO_SEED_SAMPLES="false", STUDIO_RATE_LIMIT_AUTH="1000")  # fmt: skip
    elsewhere = tmp_path_factory.mktemp("gpu-box")
    (elsewhere / "data").mkdir()
    (elsewhere / "workspace").mkdir()
    log = elsewhere.parent / "gpu-box-worker.log"
    env = {**os.environ, "STUDIO_BROKER_URL": url, "STUDIO_SERVER_URL": server.url, "STUDIO_WORKER_SECRET": secret,
           "STUDIO_MODELS_DIR": str(models), "STUDIO_DATA_DIR": str(elsewhere / "data"),
           "WORKSPACE_ROOT": str(elsewhere / "workspace"), "OMP_NUM_THREADS": "1"}  # fmt: skip
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--queues", "gpu,cpu", "--threads", "1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    yield Remote(server, secret, worker, elsewhere, log)
    stop_worker(worker)
    stop_server(server)
    # Nothing was written on the worker's side: no index, no project folders, no secret file.
    assert [p for p in elsewhere.rglob("*") if p.is_file()] == []


def follow(remote: Remote, h: dict[str, str], pid: str, kind: str, params: dict[str, Any], *,
           cancel_after_progress: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]], float]:  # fmt: skip
    """Enqueue a task and follow its /events to the end: (final task, its events, seconds from the
    cancel request to the task's end)."""
    url = remote.server.url
    token = h["Authorization"][7:]

    async def run() -> tuple[list[dict[str, Any]], float]:
        seen: list[dict[str, Any]] = []
        cancelled_at = 0.0
        async with websockets.connect(f"{url.replace('http', 'ws')}/events?token={token}", max_size=None) as ws, \
                httpx.AsyncClient() as c:  # fmt: skip
            r = await c.post(
                f"{url}/api/projects/{pid}/tasks", headers=h, json={"kind": kind, "params": params}
            )
            assert r.status_code == 202, r.text
            task_id = r.json()["id"]
            while not seen or seen[-1]["type"] not in DONE:
                event = json.loads(await asyncio.wait_for(ws.recv(), timeout=90))
                about = event.get("task")
                if not isinstance(about, dict) or about.get("id") != task_id:
                    continue
                seen.append(event)
                if cancel_after_progress and not cancelled_at and event["type"] == "task.progress":
                    cancelled_at = time.time()
                    assert (await c.post(f"{url}/api/tasks/{task_id}/cancel", headers=h)).status_code == 200
        finished = datetime.fromisoformat(seen[-1]["task"]["finished_at"]).timestamp()
        return seen, (finished - cancelled_at if cancelled_at else 0.0)

    try:
        events, stop_s = asyncio.run(run())
    except TimeoutError:
        raise AssertionError(
            "no end of the task; the worker said:\n" + remote.log.read_text()[-3000:]
        ) from None
    return events[-1]["task"], events, stop_s


def new_project(remote: Remote, h: dict[str, str], name: str) -> tuple[str, Path]:
    project = httpx.post(f"{remote.server.url}/api/projects", headers=h, json={"name": name}).json()
    return project["id"], remote.server.workspace / project["path"]


def test_diffusion_takes_storyboards_thumbnails_and_exports_run_on_a_worker_without_the_servers_disk(
    remote: Remote, tmp_path: Path
) -> None:
    h = remote.headers()
    url = remote.server.url
    pid, root = new_project(remote, h, "Harbour Film")

    async def write_scene() -> None:
        async with SyncClient(url.replace("http", "ws"), pid, h["Authorization"][7:]) as client:
            set_path(client.doc, ["story", "scenes", "harbour"], {
                "title": "Harbour at dawn", "order": 0, "synopsis": "The ferry leaves.",
                "shots": {"wide": {"description": "The whole harbour", "order": 0, "camera": "wide"},
                          "close": {"description": "A hand on a rope", "order": 1}},
            })  # fmt: skip
            await client.flushed()

    asyncio.run(write_scene())

    # image.diffusion with the tiny pipeline, on the worker: progress, a preview, a take in Git LFS.
    params = {"prompt": "a harbour at dawn", "model": "tiny-sd", "steps": 6, "width": 64, "height": 64,
              "seed": 11, "target": {"scene": "harbour", "shot": "wide"}}  # fmt: skip
    task, events, _ = follow(remote, h, pid, "image.diffusion", params)
    assert task["state"] == "succeeded", (task["error"], remote.log.read_text()[-3000:])
    types = [e["type"] for e in events]
    assert "task.running" in types
    assert types.count("task.progress") >= 2
    assert "task.preview" in types
    take = task["outputs"][0]
    assert take["path"] == "03_Renders/harbour/wide/take_0001.png"
    assert (take["seed"], take["model"]) == (11, "tiny-sd")
    with Image.open(root / take["path"]) as img:
        assert (img.format, img.size) == ("PNG", (64, 64))
    assert take["path"] in git(root, "lfs", "ls-files", "--name-only").split()
    git(root, "lfs", "fsck")
    # The latest preview stays on the task row for a client that looks later.
    row = httpx.get(f"{url}/api/tasks/{task['id']}", headers=h).json()
    assert row["preview"]
    preview = httpx.get(f"{url}{row['preview']}", headers=h)
    assert (preview.status_code, preview.headers["content-type"]) == (200, "image/png")
    with Image.open(io.BytesIO(preview.content)) as img:
        assert max(img.size) <= 128
    assert httpx.get(f"{url}{row['preview']}", headers=remote.headers()).status_code == 404  # members only

    # storyboard.sheet: the worker reads the story and the take's image through the worker API,
    # and draws exactly what a worker beside the project would.
    deadline = time.monotonic() + 10
    while (
        "take_0001" not in (root / "04_Project_Files" / "takes.json").read_text()
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    board, events, _ = follow(remote, h, pid, "storyboard.sheet", {"scene": "harbour", "columns": 2})
    assert board["state"] == "succeeded", board["error"]
    assert "task.progress" in [e["type"] for e in events]
    sheet = next(o for o in board["outputs"] if o["path"].endswith(".png"))
    local, _ = render_storyboard(files_to_state(root), root, StoryboardParams(scene="harbour", columns=2))
    without_takes, _ = render_storyboard({**files_to_state(root), "takes": {}}, root,
                                         StoryboardParams(scene="harbour", columns=2))  # fmt: skip
    with Image.open(root / sheet["path"]) as got, Image.open(io.BytesIO(local)) as want, \
            Image.open(io.BytesIO(without_takes)) as bare:  # fmt: skip
        assert got.tobytes() == want.tobytes()
        assert got.tobytes() != bare.tobytes()  # the take's image is on the sheet

    # asset.thumbnail: queued by the upload, the image fetched by the worker.
    buf = io.BytesIO()
    Image.new("RGB", (640, 320), (20, 160, 90)).save(buf, format="PNG")
    asset = httpx.post(f"{url}/api/projects/{pid}/assets", headers=h,
                       files={"file": ("green field é.png", buf.getvalue(), "image/png")}).json()  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        thumbs = [t for t in httpx.get(f"{url}/api/projects/{pid}/tasks", headers=h).json()
                  if t["kind"] == "asset.thumbnail"]  # fmt: skip
        if thumbs and thumbs[0]["state"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert thumbs[0]["state"] == "succeeded", thumbs[0]["error"]
    assert thumbs[0]["params"]["asset"] == asset["id"]
    assert not thumbs[0]["params"]["path"].isascii()  # a name the worker API must quote and unquote
    with Image.open(root / thumbs[0]["outputs"][0]["path"]) as img:
        assert img.size == (320, 160)
        assert img.convert("RGB").getpixel((10, 10)) == (20, 160, 90)

    # project.export: the server streams the tree, the worker zips it with progress and uploads it.
    export, events, _ = follow(remote, h, pid, "project.export", {"format": "zip"})
    assert export["state"] == "succeeded", export["error"]
    assert [e["task"]["progress"] for e in events if e["type"] == "task.progress"][-1] == 1.0
    with zipfile.ZipFile(root / export["outputs"][0]["path"]) as zf:
        names = zf.namelist()
        top = root.name
        assert f"{top}/project.json" in names
        assert not [
            n for n in names if n.startswith((f"{top}/.git/", f"{top}/05_Cache/", f"{top}/06_Exports/"))
        ]
        assert (
            zf.read(f"{top}/{take['path']}") == (root / take["path"]).read_bytes()
        )  # the image, not a pointer
        assert zf.read(f"{top}/project.json") == (root / "project.json").read_bytes()


def test_cancel_reaches_a_worker_elsewhere_within_a_second_and_keeps_nothing(remote: Remote) -> None:
    h = remote.headers()
    pid, root = new_project(remote, h, "Long Take")
    params = {"prompt": "a long take", "model": "tiny-sd", "steps": 200, "width": 64, "height": 64,
              "target": {"canvas": "main", "node": "long"}}  # fmt: skip
    task, _, stop_s = follow(remote, h, pid, "image.diffusion", params, cancel_after_progress=True)
    assert task["state"] == "cancelled"
    assert stop_s < 1.0, stop_s
    assert task["outputs"] == []
    assert task["progress"] < 0.5
    assert not (root / "03_Renders" / "main").exists()


def test_the_worker_api_refuses_a_wrong_secret_with_a_problem_detail(remote: Remote) -> None:
    url = remote.server.url
    for headers in ({}, {WORKER_HEADER: worker_token("not-the-secret-of-this-studio")},
                    {WORKER_HEADER: remote.secret}, remote.headers()):  # fmt: skip
        r = httpx.post(
            f"{url}/api/worker/claim", headers=headers, json={"queue": "cpu", "worker": "intruder"}
        )
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "STUDIO_WORKER_SECRET" in r.json()["detail"]
    ok = httpx.get(f"{url}/api/worker/hello", headers={WORKER_HEADER: worker_token(remote.secret)})
    assert ok.status_code == 200
    # Documented with the rest of the API.
    paths = httpx.get(f"{url}/schema/openapi.json").json()["paths"]
    assert {"/api/worker/claim", "/api/worker/tasks/{task_id}/progress", "/api/worker/tasks/{task_id}/finish",
            "/api/worker/tasks/{task_id}/tree"} <= set(paths)  # fmt: skip
