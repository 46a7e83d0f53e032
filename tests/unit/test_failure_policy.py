"""What a failure means (retry or not, and the words), and the task rows' side of retries and dead
workers: attempts fence a worker given up for dead, stale heartbeats are found, retries wait."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import redis

from sync.db import Index
from tasks.failures import RetryPolicy, TransientError, explain
from tasks.store import TaskStore


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError, which this module must recognise without torch."""


def test_connection_troubles_are_transient_and_everything_else_is_not() -> None:
    assert explain(TransientError("The server did not answer.")).transient
    assert explain(redis.ConnectionError("Connection refused")).transient
    assert explain(ConnectionResetError()).transient
    assert explain(httpx.ConnectError("refused")).transient
    assert explain(sqlite3.OperationalError("database is locked")).transient
    for permanent in (ValueError("bad"), KeyError("x"), sqlite3.OperationalError("no such table: x")):
        failure = explain(permanent)
        assert not failure.transient
        assert type(permanent).__name__ in failure.message


def test_out_of_memory_is_never_retried_and_says_what_to_try() -> None:
    gpu = explain(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not gpu.transient
    assert "GPU ran out of memory" in gpu.message
    assert "smaller size" in gpu.message
    cpu = explain(MemoryError())
    assert not cpu.transient
    assert "computer ran out of memory" in cpu.message


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    policy = RetryPolicy(base_s=2.0, cap_s=10.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 10.0]
    assert policy.heartbeat_s < policy.stale_s / 2
    env = {"STUDIO_TASK_MAX_ATTEMPTS": "5", "STUDIO_TASK_RETRY_BASE_S": "0.5", "STUDIO_TASK_STALE_S": "12"}
    assert RetryPolicy.from_env(env) == RetryPolicy(max_attempts=5, base_s=0.5, stale_s=12.0)


def store(tmp_path: Path) -> TaskStore:
    index = Index(tmp_path / "studio.db")
    index.migrate()
    return TaskStore(index)


def add(s: TaskStore) -> str:
    return str(s.create(project_id="p", kind="bench.steps", queue="cpu", params={}, node_id=None,
                        requester_id="u")["id"])  # fmt: skip


def test_a_retried_task_waits_for_its_time_and_an_old_attempt_cannot_end_it(tmp_path: Path) -> None:
    s = store(tmp_path)
    task_id = add(s)
    assert s.claim_next("cpu", "host:1") == task_id
    assert s.retry_later(task_id, 1, 0.3, "The server did not answer.")
    waiting = s.get(task_id)
    assert waiting is not None
    assert (waiting["state"], waiting["attempts"], waiting["error"]) == (
        "queued",
        1,
        "The server did not answer.",
    )
    assert waiting["eta_s"] is None or waiting["eta_s"] >= 0.2
    assert s.claim_next("cpu") is None  # not before its time
    time.sleep(0.35)
    assert s.claim_next("cpu", "host:2") == task_id
    assert not s.finish(task_id, "succeeded", attempt=1)  # the first attempt speaks no more
    assert not s.retry_later(task_id, 1, 0, "late")
    assert s.finish(task_id, "succeeded", attempt=2)
    done = s.get(task_id)
    assert done is not None
    assert (done["state"], done["attempts"], done["error"]) == ("succeeded", 2, None)


def test_running_tasks_without_a_recent_heartbeat_are_stale(tmp_path: Path) -> None:
    s = store(tmp_path)
    beating, silent = add(s), add(s)
    s.claim_next("cpu", "host:1")
    s.claim_next("cpu", "host:1")
    time.sleep(0.3)
    s.heartbeat([beating])
    assert [t["id"] for t in s.stale(0.2)] == [silent]
    assert s.waiting_turns("cpu", 0) == (0, 2)


def test_estimates_share_the_work_ahead_among_the_workers_seen_side_by_side(tmp_path: Path) -> None:
    s = store(tmp_path)
    first, second = add(s), add(s)
    s.claim_next("cpu")
    s.claim_next("cpu")  # two workers of the cpu queue ran these at the same time
    for task_id in (first, second):
        s.finish(task_id, "succeeded")
        s.update(task_id, duration_s=1.0)
    a, b, c = add(s), add(s), add(s)
    assert [s.get(t)["eta_s"] for t in (a, b, c)] == [1.0, 1.0, 2.0]  # type: ignore[index]
