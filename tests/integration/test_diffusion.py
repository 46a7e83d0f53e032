"""image.diffusion end to end: a tiny randomly initialised Stable Diffusion pipeline saved under
STUDIO_MODELS_DIR, run by a real ``studio serve`` on the CPU through the task API and /events."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import shutil
import struct
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image

from tests.conftest import LiveServer, start_server, stop_server
from tests.pipelines import build_pipeline

DONE = {"task.succeeded", "task.failed", "task.cancelled"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """STUDIO_MODELS_DIR with the tiny pipeline, a copy of it whose UNet weights are gone, and an
    SDXL-looking single-file checkpoint whose configs this machine does not have."""
    folder = tmp_path_factory.mktemp("models")
    build_pipeline(folder / "tiny-sd")
    shutil.copytree(folder / "tiny-sd", folder / "broken-sd")
    (folder / "broken-sd" / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    header = json.dumps({"conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias":
                         {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()  # fmt: skip
    (folder / "xl-style.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    return folder


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Iterator[LiveServer]:
    # One torch thread: `make test` already runs two test processes on two cores, and OpenMP's
    # spinning threads slow to a crawl when the cores are oversubscribed.
    server = start_server(tmp_path_factory.mktemp("diffusion"), STUDIO_MODELS_DIR=str(models),
                          STUDIO_RATE_LIMIT_AUTH="1000", OMP_NUM_THREADS="1")  # fmt: skip
    yield server
    stop_server(server)


def new_project(server: LiveServer) -> tuple[dict[str, str], dict[str, Any], str]:
    guest = httpx.post(f"{server.url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    project = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "Renders"}).json()
    return h, project, guest["token"]


def run_task(
    server: LiveServer, params: dict[str, Any], *, cancel_after_progress: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any], float]:
    """Enqueue an image.diffusion task in a new project and follow its events to the end; returns
    (final task, its events, the project, seconds from the cancel request to the task's end)."""
    h, project, token = new_project(server)

    async def follow() -> tuple[list[dict[str, Any]], float]:
        seen: list[dict[str, Any]] = []
        cancelled_at = 0.0
        async with websockets.connect(f"{server.url.replace('http', 'ws')}/events?token={token}",
                                      max_size=None) as ws, httpx.AsyncClient() as c:  # fmt: skip
            r = await c.post(f"{server.url}/api/projects/{project['id']}/tasks", headers=h,
                             json={"kind": "image.diffusion", "params": params})  # fmt: skip
            assert r.status_code == 202, r.text
            while not seen or seen[-1]["type"] not in DONE:
                seen.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=90)))
                if cancel_after_progress and not cancelled_at and seen[-1]["type"] == "task.progress":
                    cancelled_at = time.time()
                    assert (
                        await c.post(f"{server.url}/api/tasks/{r.json()['id']}/cancel", headers=h)
                    ).status_code == 200
        # How long the task ran on after the cancel was asked for (the row's finish time, so the
        # delivery of the event to this client does not count).
        finished = datetime.fromisoformat(seen[-1]["task"]["finished_at"]).timestamp()
        return seen, (finished - cancelled_at if cancelled_at else 0.0)

    events, stop_s = asyncio.run(follow())
    return events[-1]["task"], events, project, stop_s


def render(server: LiveServer, project: dict[str, Any], task: dict[str, Any]) -> bytes:
    assert task["state"] == "succeeded", task["error"]
    [output] = task["outputs"]
    return (server.workspace / project["path"] / output["path"]).read_bytes()


def test_models_lists_the_tiny_pipeline_and_what_is_wrong_with_the_others(live_server: LiveServer) -> None:
    h, _, _ = new_project(live_server)
    found = {m["id"]: m for m in httpx.get(f"{live_server.url}/api/models", headers=h).json()}
    assert found["tiny-sd"]["pipeline"] == "StableDiffusionPipeline"
    assert found["tiny-sd"]["format"] == "folder"
    assert found["tiny-sd"]["problem"] is None
    assert "unet/diffusion_pytorch_model.safetensors is missing" in found["broken-sd"]["problem"]
    assert (found["xl-style.safetensors"]["format"], found["xl-style.safetensors"]["pipeline"]) == (
        "single-file", "StableDiffusionXLPipeline")  # fmt: skip


def test_text_to_image_gives_a_png_of_the_size_asked_with_progress_and_a_preview(
    live_server: LiveServer,
) -> None:
    params = {"prompt": "a lighthouse at dusk", "model": "tiny-sd", "steps": 6, "width": 64, "height": 96,
              "seed": 42, "negative_prompt": "fog"}  # fmt: skip
    task, events, project, _ = run_task(live_server, params)
    with Image.open(io.BytesIO(render(live_server, project, task))) as img:
        assert (img.format, img.size) == ("PNG", (64, 96))
    output = task["outputs"][0]
    assert output["path"].endswith(".png")
    assert (output["seed"], output["model"], output["pipeline"]) == (42, "tiny-sd", "StableDiffusionPipeline")
    assert output["params"]["negative_prompt"] == "fog"
    assert output["duration_s"] > 0
    steps = [e["task"]["progress"] for e in events if e["type"] == "task.progress"]
    assert len(steps) >= 2, events  # one per step, at most 20 a second (tasks.runner)
    assert steps == sorted(steps)
    assert all(round(p * 6, 6).is_integer() or p == 0.99 for p in steps), steps
    previews = [e["preview"] for e in events if e["type"] == "task.preview"]
    assert previews
    assert previews[0].startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(previews[0].split(",", 1)[1]))) as img:
        assert max(img.size) <= 128


def test_the_same_seed_gives_the_same_image_and_an_empty_seed_is_recorded(live_server: LiveServer) -> None:
    base = {"prompt": "a red boat", "model": "tiny-sd", "steps": 3, "width": 64, "height": 64}
    first, _, p1, _ = run_task(live_server, {**base, "seed": 7})
    again, _, p2, _ = run_task(live_server, {**base, "seed": 7})
    other, _, p3, _ = run_task(live_server, {**base, "seed": 8})
    pixels = [Image.open(io.BytesIO(render(live_server, p, t))).tobytes() for p, t in
              ((p1, first), (p2, again), (p3, other))]  # fmt: skip
    assert pixels[0] == pixels[1]
    assert pixels[0] != pixels[2]
    unseeded, _, p4, _ = run_task(live_server, base)
    seed = unseeded["outputs"][0]["seed"]
    assert isinstance(seed, int)
    replay, _, p5, _ = run_task(live_server, {**base, "seed": seed})
    assert (
        hashlib.sha256(render(live_server, p4, unseeded)).digest()
        == hashlib.sha256(render(live_server, p5, replay)).digest()
    )


def test_image_to_image_from_an_uploaded_asset(live_server: LiveServer) -> None:
    h, project, _ = new_project(live_server)
    buf = io.BytesIO()
    Image.new("RGB", (200, 100), (200, 40, 40)).save(buf, format="PNG")
    asset = httpx.post(f"{live_server.url}/api/projects/{project['id']}/assets", headers=h,
                       files={"file": ("red.png", buf.getvalue(), "image/png")}).json()  # fmt: skip
    r = httpx.post(f"{live_server.url}/api/projects/{project['id']}/tasks", headers=h, json={
        "kind": "image.diffusion",
        "params": {"prompt": "a red wall", "model": "tiny-sd", "steps": 4, "width": 96, "height": 64,
                   "seed": 3, "init_image": asset["id"], "strength": 0.5},
    })  # fmt: skip
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 90
    while (task := httpx.get(f"{live_server.url}/api/tasks/{r.json()['id']}", headers=h).json())["state"] in (
        "queued", "running") and time.monotonic() < deadline:  # fmt: skip
        time.sleep(0.1)
    assert task["state"] == "succeeded", task["error"]
    assert task["outputs"][0]["pipeline"] == "StableDiffusionImg2ImgPipeline"
    with Image.open(live_server.workspace / project["path"] / task["outputs"][0]["path"]) as img:
        assert img.size == (96, 64)
    missing, _, _, _ = run_task(live_server, {"prompt": "x", "model": "tiny-sd", "init_image": "nope.png"})
    assert "neither a file of this project nor one of its asset ids" in missing["error"]


def test_cancel_mid_run_stops_between_steps_within_a_second_and_keeps_nothing(
    live_server: LiveServer,
) -> None:
    params = {"prompt": "a long take", "model": "tiny-sd", "steps": 200, "width": 64, "height": 64}
    task, _, project, stop_s = run_task(live_server, params, cancel_after_progress=True)
    assert task["state"] == "cancelled"
    assert stop_s < 1.0, stop_s
    assert task["outputs"] == []
    assert task["progress"] < 0.5
    renders = live_server.workspace / project["path"] / "03_Renders"
    assert not [p for p in renders.rglob("*") if p.is_file() and p.name != ".gitkeep"]


def test_a_broken_model_folder_fails_at_once_naming_the_folder_and_the_missing_part(
    live_server: LiveServer, models: Path
) -> None:
    task, events, _, _ = run_task(live_server, {"prompt": "a boat", "model": "broken-sd"})
    assert task["state"] == "failed"
    assert str(models / "broken-sd") in task["error"]
    assert (
        "model_index.json names unet but unet/diffusion_pytorch_model.safetensors is missing" in task["error"]
    )
    assert task["duration_s"] < 1.0
    assert not [e for e in events if e["type"] == "task.progress"]


def test_a_single_file_checkpoint_without_its_configs_says_so(live_server: LiveServer) -> None:
    task, _, _, _ = run_task(live_server, {"prompt": "a boat", "model": "xl-style.safetensors"})
    assert task["state"] == "failed"
    assert "xl-style.safetensors (SDXL checkpoint): diffusers needs the configuration of" in task["error"]
    assert "stabilityai/stable-diffusion-xl-base-1.0" in task["error"]
    assert "nothing is downloaded" in task["error"]


def test_an_unknown_model_names_the_ones_there(live_server: LiveServer) -> None:
    task, _, _, _ = run_task(live_server, {"prompt": "a boat", "model": "sd15"})
    assert task["state"] == "failed"
    assert "The model 'sd15' is not in" in task["error"]
    assert "tiny-sd" in task["error"]
