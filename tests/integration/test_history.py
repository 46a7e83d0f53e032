"""History and restore: a past version becomes the current state as a new change (SPEC M1, M2)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from pycrdt import Map

from sync.client import SyncClient
from tests.conftest import LiveServer, git


def test_m2_restore_a_past_version_as_a_new_commit_every_client_receives(live_server: LiveServer) -> None:
    url = live_server.url
    guest = httpx.post(f"{url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    project = httpx.post(
        f"{url}/api/projects", headers=h, json={"name": "First Cut", "template": "three-act"}
    ).json()
    pid = project["id"]
    for name in ("Second Cut", "Third Cut"):
        assert httpx.patch(f"{url}/api/projects/{pid}", headers=h, json={"name": name}).status_code == 200
    history = httpx.get(f"{url}/api/projects/{pid}/history", headers=h).json()
    assert [c["message"] for c in history][:2] == [
        'Rename project to "Third Cut"',
        'Rename project to "Second Cut"',
    ]
    second = history[1]["sha"]

    async def restore_while_watching() -> dict[str, Any]:
        async with SyncClient(url.replace("http", "ws"), pid, guest["token"]) as watcher:
            assert watcher.doc.get("meta", type=Map)["name"] == "Third Cut"
            async with httpx.AsyncClient() as c:
                r = await c.post(f"{url}/api/projects/{pid}/history/{second}/restore", headers=h)
            assert r.status_code == 200, r.text
            for _ in range(100):
                if watcher.doc.get("meta", type=Map)["name"] == "Second Cut":
                    break
                await asyncio.sleep(0.02)
            assert watcher.doc.get("meta", type=Map)["name"] == "Second Cut"
            return dict(r.json())

    result = asyncio.run(restore_while_watching())
    assert result["changed"] is True
    after = httpx.get(f"{url}/api/projects/{pid}/history", headers=h).json()
    assert len(after) == len(history) + 1
    assert after[0]["message"].startswith(f"Restore version {second[:7]}: ")
    assert [c["sha"] for c in after[1:]] == [c["sha"] for c in history]  # nothing later is lost
    root = live_server.workspace / project["path"]
    assert json.loads((root / "project.json").read_text())["name"] == "Second Cut"
    assert git(root, "status", "--porcelain") == ""
    assert httpx.get(f"{url}/api/projects/{pid}", headers=h).json()["name"] == "Second Cut"


def test_restore_refuses_unknown_versions_and_viewers(live_server: LiveServer) -> None:
    url = live_server.url
    guest = httpx.post(f"{url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    pid = httpx.post(f"{url}/api/projects", headers=h, json={"name": "Solo"}).json()["id"]
    r = httpx.post(f"{url}/api/projects/{pid}/history/{'ab' * 20}/restore", headers=h)
    assert r.status_code == 404
    assert "no version" in r.json()["detail"]
    r = httpx.post(f"{url}/api/projects/{pid}/history/not-a-sha/restore", headers=h)
    assert r.status_code == 422
    stranger = httpx.post(f"{url}/api/auth/guest").json()
    sha = httpx.get(f"{url}/api/projects/{pid}/history", headers=h).json()[0]["sha"]
    r = httpx.post(
        f"{url}/api/projects/{pid}/history/{sha}/restore",
        headers={"Authorization": f"Bearer {stranger['token']}"},
    )
    assert r.status_code == 404


def test_trashing_a_project_commits_its_live_edits_and_closes_its_peers(live_server: LiveServer) -> None:
    url = live_server.url
    guest = httpx.post(f"{url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    project = httpx.post(f"{url}/api/projects", headers=h, json={"name": "Doomed Edit"}).json()

    async def run() -> int | None:
        async with SyncClient(url.replace("http", "ws"), project["id"], guest["token"]) as client:
            client.doc.get("story", type=Map)["logline"] = "written just before the end"
            await client.flushed()
            await asyncio.sleep(0.1)
            async with httpx.AsyncClient() as c:
                r = await c.delete(f"{url}/api/projects/{project['id']}", headers=h)
            assert r.status_code == 204
            for _ in range(100):
                if client.closed is not None:
                    break
                await asyncio.sleep(0.02)
            return client.closed.code if client.closed else None

    assert asyncio.run(run()) == 4404
    assert not (live_server.workspace / project["path"]).exists()  # not re-created by a late write
    trashed = next((live_server.workspace / ".trash").glob(f"{project['id']}__*"))
    story = json.loads((trashed / "02_Source_Creative/story.json").read_text())
    assert story["logline"] == "written just before the end"
    assert git(trashed, "status", "--porcelain") == ""


def test_state_shows_live_edits_before_the_files_catch_up(live_server: LiveServer) -> None:
    """GET /state answers from the live document while someone edits: a script reading the state
    right after an edit sees it, not the files of up to five seconds ago."""
    url = live_server.url
    guest = httpx.post(f"{url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    project = httpx.post(f"{url}/api/projects", headers=h, json={"name": "Live State"}).json()
    pid = project["id"]
    root = live_server.workspace / project["path"]

    async def edit_and_read() -> tuple[dict[str, Any], str]:
        async with SyncClient(url.replace("http", "ws"), pid, guest["token"]) as client:
            client.doc.get("meta", type=Map)["name"] = "Renamed Live"
            await client.flushed()
            async with httpx.AsyncClient() as c:
                live = (await c.get(f"{url}/api/projects/{pid}/state", headers=h)).json()
            on_disk = json.loads((root / "project.json").read_text())["name"]
            return live, on_disk

    live, on_disk = asyncio.run(edit_and_read())
    assert on_disk == "Live State"  # the materializer has not written it yet (1 s quiet period)
    assert live["meta"]["name"] == "Renamed Live"
    stranger = httpx.post(f"{url}/api/auth/guest").json()
    r = httpx.get(f"{url}/api/projects/{pid}/state", headers={"Authorization": f"Bearer {stranger['token']}"})
    assert r.status_code == 404
