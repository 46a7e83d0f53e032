"""Task failures: transient errors retried with backoff, the rest failed at once in plain words; a
worker killed with ``kill -9`` mid-task; Redis going away and coming back.

The ``bench.steps`` kind (enabled by STUDIO_BENCH_TASKS) fails on request, the way real tasks
fail, and runs through the real runner, broker and workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import LiveServer, free_port, start_server, start_worker, stop_server, stop_worker

BENCH = {"STUDIO_BENCH_TASKS": "true", "STUDIO_TASK_RETRY_BASE_S": "0.3", "STUDIO_SEED_SAMPLES": "false"}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("failures"), STUDIO_RATE_LIMIT_AUTH="1000", **BENCH)
    yield server
    stop_server(server)


def signed_in(server: LiveServer) -> tuple[dict[str, str], str, str]:
    guest = httpx.post(f"{server.url}/api/auth/guest").json()
    h = {"Authorization": f"Bearer {guest['token']}"}
    pid = httpx.post(f"{server.url}/api/projects", headers=h, json={"name": "Failures"}).json()["id"]
    return h, pid, guest["token"]


def enqueue(server: LiveServer, h: dict[str, str], pid: str, **params: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/api/projects/{pid}/tasks", headers=h,
                      json={"kind": "bench.steps", "params": params})  # fmt: skip


def wait_for(
    server: LiveServer, h: dict[str, str], task_id: str, done: Any, seconds: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = httpx.get(f"{server.url}/api/tasks/{task_id}", headers=h).json()
        if done(task):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not get there in {seconds} s: {task}")


def finished(task: dict[str, Any]) -> bool:
    return task["state"] in ("succeeded", "failed", "cancelled")


def events_of(server: LiveServer, token: str, h: dict[str, str], pid: str, params: dict[str, Any],
              seconds: float = 30) -> list[tuple[float, dict[str, Any]]]:  # fmt: skip
    """Enqueue a bench task while listening on /events; its events with their arrival times."""

    async def run() -> list[tuple[float, dict[str, Any]]]:
        seen: list[tuple[float, dict[str, Any]]] = []
        async with websockets.connect(f"{server.url.replace('http', 'ws')}/events?token={token}") as ws:
            async with httpx.AsyncClient() as c:
                r = await c.post(f"{server.url}/api/projects/{pid}/tasks", headers=h,
                                 json={"kind": "bench.steps", "params": params})  # fmt: skip
            assert r.status_code == 202, r.text
            while not seen or seen[-1][1]["type"] not in ("task.succeeded", "task.failed", "task.cancelled"):
                e = json.loads(await asyncio.wait_for(ws.recv(), timeout=seconds))
                if e.get("task", {}).get("id") == r.json()["id"]:
                    seen.append((time.monotonic(), e))
        return seen

    return asyncio.run(run())


def test_a_transient_failure_is_retried_with_growing_backoff_until_it_succeeds(embedded: LiveServer) -> None:
    h, pid, token = signed_in(embedded)
    events = events_of(embedded, token, h, pid, {"steps": 3, "fail_first": 2})
    states = [e["type"] for _, e in events if e["type"] != "task.progress"]
    assert states == ["task.queued", "task.running", "task.retrying", "task.running", "task.retrying",
                      "task.running", "task.succeeded"]  # fmt: skip
    retrying = [(t, e["task"]) for t, e in events if e["type"] == "task.retrying"]
    assert retrying[0][1]["state"] == "queued"
    assert "did not answer" in retrying[0][1]["error"]
    assert "attempt 1 of 3 failed" in retrying[0][1]["error"]
    # Backoff: 0.3 s after the first failure, 0.6 s after the second.
    rerun = [t for t, e in events if e["type"] == "task.running"]
    assert rerun[1] - retrying[0][0] >= 0.25
    assert rerun[2] - retrying[1][0] >= 0.55
    done = events[-1][1]["task"]
    assert done["attempts"] == 3
    assert done["error"] is None
    assert done["progress"] == 1.0


def test_transient_failures_give_up_after_the_last_attempt(embedded: LiveServer) -> None:
    h, pid, _ = signed_in(embedded)
    task = wait_for(embedded, h, enqueue(embedded, h, pid, steps=2, fail_first=10).json()["id"], finished)
    assert task["state"] == "failed"
    assert task["attempts"] == 3
    assert "Gave up after 3 attempts" in task["error"]


def test_out_of_memory_is_not_retried_and_says_what_to_try(embedded: LiveServer) -> None:
    h, pid, _ = signed_in(embedded)
    task = wait_for(embedded, h, enqueue(embedded, h, pid, steps=2, fail="memory").json()["id"], finished)
    assert task["state"] == "failed"
    assert task["attempts"] == 1
    assert "ran out of memory" in task["error"]
    assert "smaller size" in task["error"]


def test_a_bug_fails_at_once_and_names_the_error(embedded: LiveServer) -> None:
    h, pid, _ = signed_in(embedded)
    task = wait_for(embedded, h, enqueue(embedded, h, pid, steps=2, fail="crash").json()["id"], finished)
    assert (task["state"], task["attempts"]) == ("failed", 1)
    assert "ZeroDivisionError" in task["error"]


def test_the_bench_kind_exists_only_where_enabled(embedded: LiveServer, tmp_path: Path) -> None:
    h, _, _ = signed_in(embedded)
    kinds = [k["kind"] for k in httpx.get(f"{embedded.url}/api/task-kinds", headers=h).json()]
    assert "bench.steps" in kinds
    plain = start_server(tmp_path, STUDIO_SEED_SAMPLES="false")
    try:
        ph, pid, _ = signed_in(plain)
        kinds = [k["kind"] for k in httpx.get(f"{plain.url}/api/task-kinds", headers=ph).json()]
        assert "bench.steps" not in kinds
        r = enqueue(plain, ph, pid, steps=1)
        assert r.status_code == 422
        assert "no task kind 'bench.steps'" in r.json()["detail"]
    finally:
        stop_server(plain)


# -- separate workers over Redis ----------------------------------------------------------------


def test_a_worker_killed_mid_task_leaves_it_retried_never_stuck_running(
    tmp_path: Path, redis_url: str
) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/5"  # a database of its own: no turns left by other tests
    settings = {"STUDIO_TASK_STALE_S": "2", **BENCH}
    server = start_server(tmp_path, STUDIO_BROKER_URL=url, **settings)
    first = start_worker(tmp_path, url, "worker-1.log", STUDIO_SERVER_URL=server.url, **settings)
    second: subprocess.Popen[bytes] | None = None
    try:
        h, pid, _ = signed_in(server)
        task_id = enqueue(server, h, pid, steps=100, step_ms=100).json()["id"]
        running = wait_for(server, h, task_id, lambda t: t["state"] == "running" and t["progress"] > 0.05)
        assert running["worker"]

        os.killpg(first.pid, signal.SIGKILL)  # the whole worker, as if its machine died
        first.wait(timeout=10)
        killed = time.monotonic()
        back = wait_for(server, h, task_id, lambda t: t["state"] != "running", seconds=15)
        noticed = time.monotonic() - killed
        # Silent for 2 s is dead; the watchdog looks every 2/3 s.
        assert noticed < 2 + 0.7 + 1.5, noticed
        assert back["state"] == "queued"
        assert back["attempts"] == 1
        assert "worker stopped responding" in back["error"]
        assert running["worker"] in back["error"]

        second = start_worker(tmp_path, url, "worker-2.log", STUDIO_SERVER_URL=server.url, **settings)
        done = wait_for(server, h, task_id, finished, seconds=60)
        assert done["state"] == "succeeded", done
        assert done["attempts"] == 2
        assert done["error"] is None
    finally:
        for worker in (first, second):
            if worker is not None:
                stop_worker(worker)
        stop_server(server)


def start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    executable = shutil.which("redis-server")
    assert executable, "redis-server is not installed: `make test` installs it"
    proc = subprocess.Popen(
        [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return proc
        time.sleep(0.05)
    raise AssertionError("redis-server did not start")


def test_redis_away_then_back_the_api_answers_new_tasks_get_503_and_work_resumes(tmp_path: Path) -> None:
    port = free_port()
    redis_proc = start_redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    settings = {"STUDIO_TASK_STALE_S": "3", **BENCH}
    server = start_server(tmp_path, STUDIO_BROKER_URL=url, **settings)
    worker = start_worker(tmp_path, url, "worker.log", STUDIO_SERVER_URL=server.url, **settings)
    try:
        h, pid, token = signed_in(server)
        first = enqueue(server, h, pid, steps=2).json()["id"]
        assert wait_for(server, h, first, finished)["state"] == "succeeded"
        long = enqueue(server, h, pid, steps=30, step_ms=100).json()["id"]
        wait_for(server, h, long, lambda t: t["state"] == "running")

        redis_proc.terminate()  # Redis goes away (and comes back empty: no persistence)
        redis_proc.wait(timeout=10)
        down_at = time.monotonic()
        health = wait_for_health(server, "unavailable")
        assert health["components"]["broker"]["kind"] == "redis"
        assert health["status"] == "degraded"
        assert httpx.get(f"{server.url}/api/projects", headers=h, timeout=5).status_code == 200
        assert httpx.get(f"{server.url}/api/projects/{pid}", headers=h, timeout=5).status_code == 200
        before = len(httpx.get(f"{server.url}/api/projects/{pid}/tasks", headers=h).json())
        refused = enqueue(server, h, pid, steps=1)
        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["retry-after"] == "5"
        assert "cannot be reached" in refused.json()["detail"]
        assert len(httpx.get(f"{server.url}/api/projects/{pid}/tasks", headers=h).json()) == before
        # The task that was running goes on: its row is in SQLite, not in Redis.
        assert wait_for(server, h, long, finished)["state"] == "succeeded"
        time.sleep(max(0.0, 6 - (time.monotonic() - down_at)))

        redis_proc = start_redis(port, tmp_path)
        wait_for_health(server, "ok", seconds=10)
        events = events_of(server, token, h, pid, {"steps": 3}, seconds=30)
        types = [e["type"] for _, e in events]
        assert "task.running" in types  # from the worker, through Redis pub/sub again
        assert types[-1] == "task.succeeded"
    finally:
        stop_worker(worker)
        stop_server(server)
        redis_proc.terminate()
        redis_proc.wait(timeout=10)


def wait_for_health(server: LiveServer, broker_status: str, seconds: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = httpx.get(f"{server.url}/api/health", timeout=5)
        assert r.status_code == 200
        health = r.json()
        if health["components"]["broker"]["status"] == broker_status:
            return health
        time.sleep(0.1)
    raise AssertionError(f"the broker never became {broker_status}: {health}")
