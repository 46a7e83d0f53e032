"""Edits made to the files on disk by other tools are merged into the live document (SPEC F1)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from pycrdt import Map

from sync.client import SyncClient
from tests.conftest import LiveServer, git


async def eventually(check: Callable[[], bool], seconds: float = 8.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


def new_project(server: LiveServer, name: str) -> tuple[dict[str, Any], dict[str, str], str]:
    guest = httpx.post(f"{server.url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    p = httpx.post(
        f"{server.url}/api/projects", headers=h, json={"name": name, "template": "three-act"}
    ).json()
    return p, h, guest["token"]


def test_f1_an_edited_file_reaches_every_client_and_is_committed_as_filesystem(
    live_server: LiveServer,
) -> None:
    project, _headers, token = new_project(live_server, "Hand Edited")
    root = live_server.workspace / project["path"]
    canvas = root / "02_Source_Creative/Canvases/main.json"

    async def run() -> None:
        async with SyncClient(live_server.url.replace("http", "ws"), project["id"], token) as client:
            body = json.loads(canvas.read_text())
            body["nodes"]["n9"] = {"type": "note", "x": 40, "y": 60, "params": {"text": "from vim"}}
            canvas.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
            nodes = client.doc.get("canvases", type=Map)["main"]["nodes"]
            assert await eventually(lambda: "n9" in nodes), "the outside edit never reached the client"
            assert str(nodes["n9"]["params"]["text"]) == "from vim"  # a Y.Text, merged per character
            assert await eventually(lambda: "filesystem" in git(root, "log", "-1", "--format=%an"))

    asyncio.run(run())
    assert git(root, "status", "--porcelain") == ""
    assert "Add 1 node on Main canvas" in git(root, "log", "-1", "--format=%s")


def test_f1_a_malformed_file_is_not_merged_and_the_activity_says_why(live_server: LiveServer) -> None:
    project, headers, token = new_project(live_server, "Broken By Hand")
    root = live_server.workspace / project["path"]

    async def run() -> None:
        async with SyncClient(live_server.url.replace("http", "ws"), project["id"], token) as client:
            before = client.doc.get("canvases", type=Map).to_py()
            (root / "02_Source_Creative/Canvases/main.json").write_text('{"nodes": {"n1": {"x": 1}}, ')

            def reported() -> bool:
                activity = httpx.get(
                    f"{live_server.url}/api/projects/{project['id']}/activity", headers=headers
                ).json()
                return any(a["kind"] == "file.invalid" for a in activity)

            assert await eventually(reported)
            assert client.doc.get("canvases", type=Map).to_py() == before

    asyncio.run(run())
    activity = httpx.get(f"{live_server.url}/api/projects/{project['id']}/activity", headers=headers).json()
    entry = next(a for a in activity if a["kind"] == "file.invalid")
    assert entry["detail"]["path"] == "02_Source_Creative/Canvases/main.json"
    assert "not valid JSON" in entry["detail"]["reason"]


def test_f1_git_checkout_of_an_old_version_is_merged(live_server: LiveServer, tmp_path: Path) -> None:
    project, headers, token = new_project(live_server, "Checked Out")
    root = live_server.workspace / project["path"]
    assert httpx.patch(f"{live_server.url}/api/projects/{project['id']}", headers=headers,
                       json={"name": "Renamed"}).status_code == 200  # fmt: skip
    first = git(root, "rev-list", "--max-parents=0", "HEAD").strip()

    async def run() -> None:
        async with SyncClient(live_server.url.replace("http", "ws"), project["id"], token) as client:
            meta = client.doc.get("meta", type=Map)
            assert meta["name"] == "Renamed"
            await asyncio.to_thread(git, root, "checkout", "-q", first, "--", "project.json")
            assert await eventually(lambda: meta["name"] == "Checked Out")

    asyncio.run(run())
