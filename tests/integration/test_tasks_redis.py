"""Tasks with STUDIO_BROKER_URL=redis://…: the server only enqueues; a separate `studio worker`
process runs the task, and its progress reaches /events through Redis pub/sub."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.conftest import ROOT, start_server, stop_server


def test_a_separate_worker_runs_the_task_and_events_flow_through_redis(
    tmp_path: Path, redis_url: str
) -> None:
    server = start_server(tmp_path, STUDIO_BROKER_URL=redis_url, STUDIO_SEED_SAMPLES="false")
    env = {**os.environ, "STUDIO_BROKER_URL": redis_url, "STUDIO_DATA_DIR": str(tmp_path / "data"),
           "WORKSPACE_ROOT": str(tmp_path / "workspace"), "STUDIO_SERVER_URL": server.url}  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--queues", "cpu", "--threads", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        health = httpx.get(f"{server.url}/api/health").json()
        assert health["components"]["broker"]["kind"] == "redis"
        guest = httpx.post(f"{server.url}/api/auth/guest").json()
        h = {"Authorization": f"Bearer {guest['token']}"}
        pid = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "Remote"}).json()["id"]

        async def run() -> list[dict[str, Any]]:
            seen: list[dict[str, Any]] = []
            async with websockets.connect(
                f"{server.url.replace('http', 'ws')}/events?token={guest['token']}"
            ) as ws:
                async with httpx.AsyncClient() as c:
                    r = await c.post(f"{server.url}/api/projects/{pid}/tasks", headers=h,
                                     json={"kind": "project.export", "params": {"format": "bundle"}})  # fmt: skip
                assert r.status_code == 202, r.text
                while not seen or seen[-1]["type"] not in ("task.succeeded", "task.failed"):
                    seen.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=30)))
            return seen

        events = asyncio.run(run())
        assert events[0]["type"] == "task.queued"
        assert "task.running" in [e["type"] for e in events]  # published by the worker process
        assert events[-1]["type"] == "task.succeeded", events[-1]
        out = events[-1]["task"]["outputs"][0]
        assert out["path"].endswith(".bundle")
        # Handed back through the server's upload route, whole: a bundle git can read.
        bundle = tmp_path / "workspace" / "Projects" / "Remote" / out["path"]
        assert bundle.stat().st_size == out["size"]
        assert (
            subprocess.run(["git", "bundle", "list-heads", str(bundle)], capture_output=True).returncode == 0
        )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)
        stop_server(server)
