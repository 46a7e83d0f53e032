"""Bursts of new projects: builder processes make the repositories, the server places them.

Real processes (spawned), real folders and repositories checked with the ``git`` CLI; the last
test goes through a real ``studio serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from sync import repo
from sync.builders import BUILDER_NICENESS, Builders
from sync.model import apply_template, empty_state
from sync.templates import get_template
from sync.workspace import Workspace
from tests.conftest import LiveServer, children, git, start_server, stop_server

AUTHOR = repo.Author("Bea Builder", "bea@example.org")


def state_of(name: str) -> dict:
    tmpl = get_template("three-act")
    return apply_template(
        empty_state(uuid=f"00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}", name=name,
                    template=tmpl["id"], created="2026-11-26T00:00:00Z", description=""),
        tmpl,
    )  # fmt: skip


def fast_server(tmp: Path) -> LiveServer:
    """A real studio serve without samples, whose rate limits let a test's bursts through."""
    limits = {f"STUDIO_RATE_LIMIT_{k}": "100000" for k in ("USER", "IP", "AUTH")}
    return start_server(tmp, STUDIO_SEED_SAMPLES="false", **limits)


def check_repository(root: Path) -> None:
    assert git(root, "status", "--porcelain") == ""
    assert git(root, "log", "--format=%an %s") == "Bea Builder Create\n"
    git(root, "fsck", "--strict")
    assert (root / "02_Source_Creative" / "Canvases" / "main.json").is_file()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "workspace")
    ws.ensure_layout()
    return ws


def test_a_burst_is_built_by_builder_processes_and_each_project_is_whole(workspace: Workspace) -> None:
    builders = Builders(workspace, processes=2)

    async def burst() -> list[Path]:
        return await asyncio.gather(
            *(builders.build(state_of(f"Burst {i}"), AUTHOR, "Create") for i in range(8))
        )

    try:
        stages = asyncio.run(burst())
        assert builders._pool is not None, "several at once: builder processes were started"
        workers = list(builders._pool._processes)
        assert workers
        assert os.getpid() not in workers
        # They give way to the server for the CPU (a process spawned last may still be starting).
        expected = [min(19, os.getpriority(os.PRIO_PROCESS, 0) + BUILDER_NICENESS)] * len(workers)
        deadline = time.monotonic() + 20
        while [os.getpriority(os.PRIO_PROCESS, pid) for pid in workers] != expected:
            assert time.monotonic() < deadline, [os.getpriority(os.PRIO_PROCESS, pid) for pid in workers]
            time.sleep(0.05)
    finally:
        builders.close()
    for i, stage in enumerate(stages):
        assert stage.parent == workspace.staging
        rel = workspace.place_built(stage, state_of(f"Burst {i}"), lambda rel: None)
        check_repository(workspace.root / rel)
    assert sorted(p.name for p in workspace.projects.iterdir()) == sorted(f"Burst_{i}" for i in range(8))
    assert list(workspace.staging.iterdir()) == []


def test_one_creation_alone_starts_no_builder_process(workspace: Workspace) -> None:
    builders = Builders(workspace, processes=2)
    stage = asyncio.run(builders.build(state_of("Alone"), AUTHOR, "Create"))
    assert builders._pool is None
    check_repository(stage)


def test_a_creation_whose_caller_goes_away_leaves_nothing_in_staging(workspace: Workspace) -> None:
    builders = Builders(workspace, processes=2)

    async def give_up() -> None:
        jobs = [
            asyncio.ensure_future(builders.build(state_of(f"Gone {i}"), AUTHOR, "Create")) for i in range(4)
        ]
        await asyncio.sleep(0)
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    def staging_empty_within(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while any(workspace.staging.iterdir()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    try:
        asyncio.run(give_up())
        assert staging_empty_within(20), list(workspace.staging.iterdir())
    finally:
        builders.close()
    assert list(workspace.projects.iterdir()) == []


def test_staging_folders_a_stopped_process_left_are_cleared_at_start_and_fresh_ones_kept(
    workspace: Workspace,
) -> None:
    old, fresh = workspace.staging / "left-by-a-crash", workspace.staging / "being-built-elsewhere"
    for folder in (old, fresh):
        (folder / ".git").mkdir(parents=True)
    day_ago = time.time() - 2 * 86_400
    os.utime(old, (day_ago, day_ago))
    Workspace(workspace.root).ensure_layout()  # what a server does when it starts
    assert not old.exists()
    assert fresh.is_dir()


def test_a_killed_builder_process_does_not_lose_the_next_creations(workspace: Workspace) -> None:
    builders = Builders(workspace, processes=2)

    async def burst(tag: str) -> list[Path]:
        return await asyncio.gather(
            *(builders.build(state_of(f"{tag} {i}"), AUTHOR, "Create") for i in range(4))
        )

    try:
        asyncio.run(burst("Before"))
        assert builders._pool is not None
        for pid in list(builders._pool._processes):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        stages = asyncio.run(burst("After"))
    finally:
        builders.close()
    assert len(stages) == 4
    for stage in stages:
        check_repository(stage)


def test_fifty_projects_created_at_once_over_http_are_all_there(tmp_path: Path) -> None:
    server = fast_server(tmp_path)
    try:
        token = httpx.post(f"{server.url}/api/auth/guest", timeout=30).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}

        def create(i: int) -> httpx.Response:
            body = {"name": f"Wave {i}", "template": "three-act"}
            return httpx.post(f"{server.url}/api/projects", json=body, headers=headers, timeout=60)

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(create, range(50)))
        assert [a.status_code for a in answers] == [201] * 50, [
            a.text for a in answers if a.status_code != 201
        ]
        listed = httpx.get(f"{server.url}/api/projects?limit=500", headers=headers, timeout=30).json()
        assert sorted(p["name"] for p in listed["items"]) == sorted(f"Wave {i}" for i in range(50))
        for project in answers:
            root = server.workspace / project.json()["path"]
            assert git(root, "status", "--porcelain") == ""
            assert git(root, "rev-list", "--count", "HEAD").strip() == "1"
        assert list((server.workspace / ".staging").iterdir()) == []
    finally:
        stop_server(server)


def alive(pid: int) -> bool:
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def test_builder_processes_stop_when_their_server_worker_is_killed(tmp_path: Path) -> None:
    server = fast_server(tmp_path)
    try:
        token = httpx.post(f"{server.url}/api/auth/guest", timeout=30).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}

        def create(i: int) -> int:
            body = {"name": f"Orphan {i}", "template": "blank"}
            return httpx.post(
                f"{server.url}/api/projects", json=body, headers=headers, timeout=60
            ).status_code

        def builders_now() -> list[int]:
            return [pid for worker in children(server.process.pid) for pid in children(worker)
                    if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]  # fmt: skip

        # Bursts until two creations overlapped (on a busy machine one burst may not).
        builders: list[int] = []
        for burst in range(10):
            with ThreadPoolExecutor(16) as pool:
                assert list(pool.map(create, range(burst * 16, burst * 16 + 16))) == [201] * 16
            builders = builders_now()
            if builders:
                break
        workers = children(server.process.pid)
        assert builders, "a burst of creations started builder processes"
        for worker in workers:
            os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in builders):
            assert time.monotonic() < deadline, f"builders {builders} outlived their server worker"
            time.sleep(0.1)
    finally:
        stop_server(server)
