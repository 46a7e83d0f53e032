"""Task rows: exact queue positions with priorities, claims in that order, ETAs from history."""

from __future__ import annotations

import time
from pathlib import Path

from sync.db import Index
from tasks.store import TaskStore


def store(tmp_path: Path) -> TaskStore:
    index = Index(tmp_path / "studio.db")
    index.migrate()
    return TaskStore(index)


def add(
    s: TaskStore,
    priority: int = 0,
    queue: str = "gpu",
    kind: str = "image.diffusion",
    size: str = "30x512x512",
) -> str:
    time.sleep(0.001)  # distinct creation times
    return str(s.create(project_id="p", kind=kind, queue=queue, params={}, node_id=None, requester_id="u",
                        priority=priority, size_key=size)["id"])  # fmt: skip


def test_queue_positions_follow_priority_then_age(tmp_path: Path) -> None:
    s = store(tmp_path)
    a, b, c = add(s), add(s), add(s, priority=5)
    other_queue = add(s, queue="cpu", kind="project.export", size="")
    positions = {t: s.get(t)["queue_position"] for t in (a, b, c, other_queue)}  # type: ignore[index]
    assert positions == {c: 1, a: 2, b: 3, other_queue: 1}
    assert [s.claim_next("gpu"), s.claim_next("gpu"), s.claim_next("gpu"), s.claim_next("gpu")] == [
        c,
        a,
        b,
        None,
    ]


def test_a_cancelled_queued_task_is_never_claimed(tmp_path: Path) -> None:
    s = store(tmp_path)
    a, b = add(s), add(s)
    assert s.request_cancel(a) == "cancelled"
    assert s.get(b)["queue_position"] == 1  # type: ignore[index]
    assert s.claim_next("gpu") == b
    assert s.claim_next("gpu") is None


def test_eta_is_the_median_of_past_runs_plus_the_work_ahead(tmp_path: Path) -> None:
    s = store(tmp_path)
    first = add(s)
    assert s.get(first)["eta_s"] is None  # no history yet: no made-up number  # type: ignore[index]
    s.request_cancel(first)
    for duration in (4.0, 6.0, 5.0):
        t = add(s)
        s.claim_next("gpu")
        s.finish(t, "succeeded")
        s.update(t, duration_s=duration)
    waiting = add(s)
    assert s.get(waiting)["eta_s"] == 5.0  # type: ignore[index]
    behind = add(s)
    assert s.get(behind)["eta_s"] == 10.0  # its own 5 s plus the 5 s ahead  # type: ignore[index]
    s.claim_next("gpu")
    s.update(waiting, progress=0.5)
    assert s.get(waiting)["eta_s"] == 2.5  # type: ignore[index]
    assert s.get(behind)["eta_s"] == 7.5  # type: ignore[index]


def test_recovery_fails_interrupted_tasks_and_returns_the_waiting_ones(tmp_path: Path) -> None:
    s = store(tmp_path)
    running, waiting = add(s), add(s)
    s.claim_next("gpu")
    failed, queued = s.recover()
    assert failed == [running]
    assert queued == [waiting]
    task = s.get(running)
    assert task is not None
    assert task["state"] == "failed"
    assert "stopped while this task was running" in task["error"]
