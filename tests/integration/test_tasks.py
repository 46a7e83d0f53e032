"""Tasks with the embedded default (in-process Dramatiq workers): kinds, queue, events, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image

from tests.conftest import LiveServer, start_server, stop_server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # Many guests in a few seconds: sign-in rate limits raised for this module.
    server = start_server(tmp_path_factory.mktemp("tasks"), STUDIO_RATE_LIMIT_AUTH="1000")
    yield server
    stop_server(server)


def guest_project(server: LiveServer, template: str = "three-act") -> tuple[dict[str, str], str, str]:
    guest = httpx.post(f"{server.url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    pid = httpx.post(
        f"{server.url}/api/projects", headers=h, json={"name": "Tasks", "template": template}
    ).json()["id"]
    return h, pid, guest["token"]


def wait_state(
    server: LiveServer, h: dict[str, str], task_id: str, states: set[str], seconds: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        task = httpx.get(f"{server.url}/api/tasks/{task_id}", headers=h).json()
        if task["state"] in states:
            return dict(task)
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached {states}: {task}")


def test_task_kinds_serve_their_params_schema(live_server: LiveServer) -> None:
    h, _, _ = guest_project(live_server)
    kinds = {k["kind"]: k for k in httpx.get(f"{live_server.url}/api/task-kinds", headers=h).json()}
    assert {"image.diffusion", "storyboard.sheet", "asset.thumbnail", "project.export"} <= set(kinds)
    diffusion = kinds["image.diffusion"]
    assert diffusion["queue"] == "gpu"
    assert {"prompt", "steps", "guidance", "width", "height", "seed", "negative_prompt"} <= set(
        diffusion["params_schema"]["properties"]
    )
    assert kinds["storyboard.sheet"]["queue"] == "cpu"


def test_export_task_runs_with_events_from_queued_to_succeeded(live_server: LiveServer) -> None:
    h, pid, token = guest_project(live_server)

    async def run() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        async with websockets.connect(f"{live_server.url.replace('http', 'ws')}/events?token={token}") as ws:
            async with httpx.AsyncClient() as c:
                r = await c.post(f"{live_server.url}/api/projects/{pid}/tasks", headers=h,
                                 json={"kind": "project.export", "params": {"format": "zip"}})  # fmt: skip
            assert r.status_code == 202, r.text
            task_id = r.json()["id"]
            while not seen or seen[-1]["type"] not in ("task.succeeded", "task.failed"):
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=20)))
            assert all(e["task"]["id"] == task_id for e in seen)
        return seen

    events = asyncio.run(run())
    types = [e["type"] for e in events]
    assert types[0] == "task.queued"
    assert "task.running" in types
    assert types[-1] == "task.succeeded", events[-1]
    task = events[-1]["task"]
    assert task["progress"] == 1.0
    assert task["outputs"][0]["path"].startswith("06_Exports/")
    assert task["outputs"][0]["path"].endswith(".zip")
    assert task["outputs"][0]["size"] > 0
    activity = httpx.get(f"{live_server.url}/api/projects/{pid}/activity", headers=h).json()
    assert activity[0]["kind"] == "task.succeeded"
    assert activity[0]["summary"] == "project.export finished"
    assert activity[0]["detail"]["task"] == task["id"]


def test_events_without_a_valid_token_close_with_4401(live_server: LiveServer) -> None:
    async def close_code(query: str) -> int | None:
        async with websockets.connect(f"{live_server.url.replace('http', 'ws')}/events{query}") as ws:
            with contextlib.suppress(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout=10)
            return ws.close_code

    assert asyncio.run(close_code("")) == 4401
    assert asyncio.run(close_code("?token=not-a-token")) == 4401


def test_storyboard_of_a_sample_scene_makes_a_png_and_a_pdf(live_server: LiveServer) -> None:
    guest = httpx.post(f"{live_server.url}/api/auth/guest").json()  # gets the sample projects
    h = {"Authorization": f"Bearer {guest['token']}"}
    low_tide = next(p for p in httpx.get(f"{live_server.url}/api/projects", headers=h).json()["items"]
                    if p["name"] == "Low Tide")  # fmt: skip
    state = httpx.get(f"{live_server.url}/api/projects/{low_tide['id']}/state", headers=h).json()
    scene = min(state["story"]["scenes"], key=lambda s: state["story"]["scenes"][s]["order"])
    r = httpx.post(f"{live_server.url}/api/projects/{low_tide['id']}/tasks", headers=h,
                   json={"kind": "storyboard.sheet", "params": {"scene": scene}})  # fmt: skip
    assert r.status_code == 202, r.text
    task = wait_state(live_server, h, r.json()["id"], {"succeeded", "failed"})
    assert task["state"] == "succeeded", task["error"]
    paths = sorted(o["path"] for o in task["outputs"])
    assert [p.rsplit(".", 1)[1] for p in paths] == ["pdf", "png"]
    root = live_server.workspace / low_tide["path"]
    assert (root / paths[0]).read_bytes().startswith(b"%PDF")
    assert Image.open(root / paths[1]).size[0] > 1000


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"kind": "video.magic", "params": {}}, "no task kind"),
        ({"kind": "image.diffusion", "params": {"prompt": "", "steps": 30}}, "params.prompt"),
        ({"kind": "image.diffusion", "params": {"prompt": "a boat", "steps": 0}}, "params.steps"),
        ({"kind": "storyboard.sheet", "params": {"columns": 3}}, "params.scene"),
    ],
)
def test_bad_task_requests_are_422(live_server: LiveServer, body: dict[str, Any], words: str) -> None:
    h, pid, _ = guest_project(live_server)
    r = httpx.post(f"{live_server.url}/api/projects/{pid}/tasks", headers=h, json=body)
    assert r.status_code == 422
    assert words in r.json()["detail"]


def test_a_diffusion_without_models_fails_with_a_message_that_says_what_to_do(
    live_server: LiveServer,
) -> None:
    h, pid, _ = guest_project(live_server)
    r = httpx.post(f"{live_server.url}/api/projects/{pid}/tasks", headers=h,
                   json={"kind": "image.diffusion", "params": {"prompt": "a lighthouse at dusk"}})  # fmt: skip
    task = wait_state(live_server, h, r.json()["id"], {"failed", "succeeded"})
    assert task["state"] == "failed"
    assert "No generation models were found" in task["error"]
    assert "STUDIO_MODELS_DIR" in task["error"]


def test_cancel_a_queued_task_and_refuse_cancelling_a_finished_one(live_server: LiveServer) -> None:
    h, pid, _ = guest_project(live_server)
    # Fill the gpu queue (one at a time) so the last one is still waiting when cancelled.
    ids = [
        httpx.post(f"{live_server.url}/api/projects/{pid}/tasks", headers=h,
                   json={"kind": "image.diffusion", "params": {"prompt": f"shot {i}"}}).json()["id"]
        for i in range(6)
    ]  # fmt: skip
    last = httpx.get(f"{live_server.url}/api/tasks/{ids[-1]}", headers=h).json()
    if last["state"] == "queued":
        assert last["queue_position"] >= 1
        r = httpx.post(f"{live_server.url}/api/tasks/{ids[-1]}/cancel", headers=h)
        assert r.status_code == 200
        assert r.json()["state"] == "cancelled"
        time.sleep(0.5)
        assert httpx.get(f"{live_server.url}/api/tasks/{ids[-1]}", headers=h).json()["started_at"] is None
    done = wait_state(live_server, h, ids[0], {"failed", "succeeded"})
    r = httpx.post(f"{live_server.url}/api/tasks/{done['id']}/cancel", headers=h)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")


def test_tasks_of_other_people_are_invisible(live_server: LiveServer) -> None:
    h, pid, _ = guest_project(live_server)
    task_id = httpx.post(f"{live_server.url}/api/projects/{pid}/tasks", headers=h,
                         json={"kind": "project.export", "params": {}}).json()["id"]  # fmt: skip
    stranger, _, _ = guest_project(live_server)
    assert httpx.get(f"{live_server.url}/api/tasks/{task_id}", headers=stranger).status_code == 404
    assert httpx.post(f"{live_server.url}/api/tasks/{task_id}/cancel", headers=stranger).status_code == 404
    assert httpx.post(f"{live_server.url}/api/projects/{pid}/tasks", headers=stranger,
                      json={"kind": "project.export", "params": {}}).status_code == 404  # fmt: skip


def test_models_lists_diffusers_folders_and_checkpoints(tmp_path: Any) -> None:
    from litestar.testing import TestClient

    from app.main import create_app
    from tests.conftest import BASE, make_settings

    models = tmp_path / "models"
    (models / "tiny-sd").mkdir(parents=True)
    (models / "tiny-sd" / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (models / "dreamlike.safetensors").write_bytes(b"\0" * 64)
    (models / "notes.txt").write_text("not a model")
    (models / "empty-folder").mkdir()
    with TestClient(create_app(make_settings(tmp_path, STUDIO_MODELS_DIR=models)), base_url=BASE) as c:
        h = {"Authorization": f"Bearer {c.post('/api/auth/guest').json()['token']}"}
        found = c.get("/api/models", headers=h).json()
    assert [(m["id"], m["kind"], m["format"], m["pipeline"]) for m in found] == [
        ("dreamlike.safetensors", "checkpoint", "single-file", "unknown"),
        ("tiny-sd", "diffusers", "folder", "StableDiffusionPipeline"),
    ]
    assert found[0]["size"] == 64
    assert "not a checkpoint this studio recognises" in found[0]["problem"]  # 64 zero bytes
