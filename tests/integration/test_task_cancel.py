"""Cancel (issue 4, point 5): a running task stops within 1 s of POST /api/tasks/{id}/cancel, a
queued one never starts, and nothing partial is kept — with the embedded workers and with Redis
plus a separate `studio worker` process.

The running task is a zip export of a project holding 600 incompressible files (several seconds
of work on these machines), which checks for a cancel between two files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, LiveServer, start_server, stop_server

FILES, FILE_BYTES = 600, 128 * 1024
LIMIT_S = 1.0


def bulky_project(server: LiveServer, name: str) -> tuple[dict[str, str], str, Path]:
    guest = httpx.post(f"{server.url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    project = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": name}).json()
    root = server.workspace / project["path"]
    bulk = root / "04_Project_Files" / "plates"
    bulk.mkdir(parents=True)
    for i in range(FILES):
        (bulk / f"plate_{i:04d}.raw").write_bytes(os.urandom(FILE_BYTES))
    return h, project["id"], root


def export(server: LiveServer, h: dict[str, str], pid: str) -> str:
    r = httpx.post(f"{server.url}/api/projects/{pid}/tasks", headers=h,
                   json={"kind": "project.export", "params": {"format": "zip"}})  # fmt: skip
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def task(server: LiveServer, h: dict[str, str], task_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/api/tasks/{task_id}", headers=h).json())


def wait_running(server: LiveServer, h: dict[str, str], task_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        t = task(server, h, task_id)
        if t["state"] == "running" and t["progress"] >= 0.05:
            return
        assert t["state"] in ("queued", "running"), t
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} never got going: {t}")


def cancel_running(server: LiveServer, h: dict[str, str], task_id: str) -> float:
    """Cancel a running task; seconds until it has stopped."""
    start = time.monotonic()
    r = httpx.post(f"{server.url}/api/tasks/{task_id}/cancel", headers=h)
    assert r.status_code == 200, r.text
    while time.monotonic() - start < 10:
        t = task(server, h, task_id)
        if t["state"] != "running":
            assert t["state"] == "cancelled", t
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"task {task_id} still running 10 s after cancel")


def assert_nothing_kept(root: Path, *task_ids: str) -> None:
    exports = root / "06_Exports"
    assert not exports.exists() or not [p for p in exports.rglob("*") if p.is_file()]
    for task_id in task_ids:
        assert not list(Path(tempfile.gettempdir()).glob(f"studio-{task_id[:8]}-*")), (
            "a partial export was left"
        )


def check_cancel(server: LiveServer, running: int) -> list[float]:
    """``running`` exports start (one per worker thread), one more waits; cancel them all."""
    h, pid, root = bulky_project(server, "Plates")
    started = [export(server, h, pid) for _ in range(running)]
    waiting = export(server, h, pid)
    for task_id in started:
        wait_running(server, h, task_id)
    assert task(server, h, waiting)["state"] == "queued"

    r = httpx.post(f"{server.url}/api/tasks/{waiting}/cancel", headers=h)
    assert r.json()["state"] == "cancelled"
    stops = [cancel_running(server, h, task_id) for task_id in started]
    assert all(s < LIMIT_S for s in stops), f"stops took {stops} s"

    time.sleep(1.0)  # the waiting task's turn came and went
    never = task(server, h, waiting)
    assert never["state"] == "cancelled"
    assert never["started_at"] is None
    assert_nothing_kept(root, waiting, *started)
    print(f"cancel → stopped: {', '.join(f'{s * 1000:.0f} ms' for s in stops)}")
    return stops


def test_cancel_with_the_embedded_workers(tmp_path: Path) -> None:
    server = start_server(tmp_path, STUDIO_SEED_SAMPLES="false")
    try:
        check_cancel(server, running=2)  # the embedded cpu queue runs two at a time
    finally:
        stop_server(server)


def test_cancel_with_redis_and_a_separate_worker(tmp_path: Path, redis_url: str) -> None:
    redis_url = redis_url.rsplit("/", 1)[0] + "/2"  # a database of its own: no messages of other modules
    server = start_server(tmp_path, STUDIO_BROKER_URL=redis_url, STUDIO_SEED_SAMPLES="false")
    env = {**os.environ, "STUDIO_BROKER_URL": redis_url, "STUDIO_DATA_DIR": str(server.data_dir),
           "WORKSPACE_ROOT": str(server.workspace), "STUDIO_SERVER_URL": server.url}  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--queues", "cpu", "--threads", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        check_cancel(server, running=1)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)
        stop_server(server)
