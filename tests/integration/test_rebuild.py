"""Either source rebuilds the other (SPEC R3): the repository from the update log, and the
document and the index from the repository alone."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from pycrdt import Map

from app.projects.live import build_rooms
from app.settings import load_settings
from app.studio import Studio
from sync.client import SyncClient
from sync.docmodel import doc_to_state
from sync.jsonfile import normalize
from sync.model import files_to_state
from tests.conftest import ROOT, git, start_server, stop_server


def studio_cli(tmp: Path, *args: str) -> str:
    env = {**os.environ, "STUDIO_DATA_DIR": str(tmp / "data"), "WORKSPACE_ROOT": str(tmp / "workspace")}
    out = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True)  # fmt: skip
    return out.stdout


def edited_project(tmp: Path) -> tuple[str, Path]:
    server = start_server(tmp, STUDIO_SEED_SAMPLES="false")
    try:
        guest = httpx.post(f"{server.url}/api/auth/guest").json()
        h = {"Authorization": f"Bearer {guest['token']}"}
        p = httpx.post(
            f"{server.url}/api/projects", headers=h, json={"name": "Rebuilt", "template": "five-act"}
        ).json()

        async def edit() -> None:
            async with SyncClient(server.url.replace("http", "ws"), p["id"], guest["token"]) as c:
                nodes = c.doc.get("canvases", type=Map)["main"]["nodes"]
                nodes["keep"] = Map({"type": "note", "x": 7, "y": 8, "params": Map({"steps": 12})})
                await c.flushed()
                await asyncio.sleep(0.2)

        asyncio.run(edit())
    finally:
        stop_server(server)  # a clean stop flushes the document to Git
    return p["id"], tmp / "workspace" / p["path"]


def test_r3_the_repository_is_rebuilt_from_the_update_log(tmp_path: Path) -> None:
    project_id, root = edited_project(tmp_path)
    shutil.rmtree(root)  # the whole repository is lost
    out = studio_cli(tmp_path, "materialize")
    assert f"{project_id}: repository re-created" in out
    canvas = json.loads((root / "02_Source_Creative/Canvases/main.json").read_text())
    assert canvas["nodes"]["keep"] == {"params": {"steps": 12}, "type": "note", "x": 7, "y": 8}
    assert json.loads((root / "project.json").read_text())["uuid"] == project_id
    assert git(root, "status", "--porcelain") == ""
    git(root, "fsck")
    assert "Rebuild from the update log" in git(root, "log", "--format=%s")


def test_r3_the_document_and_index_are_rebuilt_from_the_repository_alone(tmp_path: Path) -> None:
    project_id, root = edited_project(tmp_path)
    for db in (tmp_path / "data").glob("*.db*"):
        db.unlink()  # the index and the update log are lost
    assert "1 added" in studio_cli(tmp_path, "reindex")
    settings = load_settings(STUDIO_DATA_DIR=tmp_path / "data", WORKSPACE_ROOT=tmp_path / "workspace")
    rooms = build_rooms(Studio.open(settings))

    async def load() -> dict[str, object]:
        room = await rooms.get(project_id)
        return doc_to_state(room.doc)

    state = asyncio.run(load())
    assert normalize(state) == normalize(files_to_state(root))
    assert state["canvases"]["main"]["nodes"]["keep"]["params"]["steps"] == 12  # type: ignore[index]
