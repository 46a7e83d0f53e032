"""Task rows in the studio's SQLite index: one row per task, the durable truth about it.

A task is a row (kind, params, project, requester, state, progress, attempts, error, outputs,
timestamps) as well as a Dramatiq message, so a restart can tell what was queued and what was
interrupted.
"""

from __future__ import annotations

import heapq
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sync.db import Index

FINISHED = ("succeeded", "failed", "cancelled")
COLUMNS = (
    "id, project_id, kind, queue, params, node_id, requester_id, priority, state, progress, error, outputs, "
    "attempts, cancel_requested, size_key, created_at, started_at, finished_at, duration_s, retry_at, "
    "heartbeat_at, worker, preview_at"
)
_KEYS = [c.strip() for c in COLUMNS.split(",")]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class TaskStore:
    def __init__(self, index: Index) -> None:
        self.index = index
        self._parallelism: dict[str, tuple[float, int]] = {}

    def create(self, *, project_id: str, kind: str, queue: str, params: dict[str, Any], node_id: str | None,
               requester_id: str | None, priority: int = 0, size_key: str = "") -> dict[str, Any]:  # fmt: skip
        task_id = str(uuid.uuid4())
        self.index.db.execute(
            f"INSERT INTO tasks({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, NULL, '[]', 0, 0, ?, ?, "  # noqa: S608
            "NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            [task_id, project_id, kind, queue, json.dumps(params, sort_keys=True), node_id, requester_id, priority,
             size_key, now_iso()],
        )  # fmt: skip
        task = self.get(task_id)
        assert task is not None
        return task

    def get(self, task_id: str) -> dict[str, Any] | None:
        row = self.index.db.execute(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", [task_id]).fetchone()  # noqa: S608
        return self._public(row) if row else None

    def _public(self, row: tuple[Any, ...]) -> dict[str, Any]:
        task = dict(zip(_KEYS, row, strict=True))
        task["params"] = json.loads(task["params"])
        task["outputs"] = json.loads(task["outputs"])
        task["cancel_requested"] = bool(task["cancel_requested"])
        task["queue_position"] = self.queue_position(task) if task["state"] == "queued" else 0
        task["eta_s"] = self.eta(task)
        # The latest low-resolution preview a running task sent (a diffusion every few steps), so a
        # client that connects late sees it too; the URL changes with each new preview.
        task["preview"] = (
            f"/api/tasks/{task['id']}/preview?at={task['preview_at']}" if task["preview_at"] else None
        )
        return task

    def _returning(self, sql: str, args: list[Any]) -> dict[str, Any] | None:
        """The task a write (``UPDATE … RETURNING {COLUMNS}``) changed, None when it changed none."""
        row = self.index.db.execute(sql + f" RETURNING {COLUMNS}", args).fetchone()
        return self._public(row) if row else None

    def exists(self, task_id: str) -> bool:
        return self.index.db.execute("SELECT 1 FROM tasks WHERE id = ?", [task_id]).fetchone() is not None

    def set_preview(self, task_id: str, png: bytes) -> dict[str, Any] | None:
        """Keep ``png`` as the latest preview of the running task ``task_id``; the task, or None
        when it is not running (any more)."""
        return self._returning(
            "UPDATE tasks SET preview = ?, preview_at = ? WHERE id = ? AND state = 'running'",
            [png, now_iso(), task_id],
        )

    def set_progress(self, task_id: str, fraction: float) -> dict[str, Any] | None:
        """Record how far the task is (clamped to 0..1); the task, or None when there is none."""
        return self._returning(
            "UPDATE tasks SET progress = ? WHERE id = ?", [max(0.0, min(1.0, fraction)), task_id]
        )

    def preview(self, task_id: str) -> bytes | None:
        """The latest preview (PNG) of ``task_id``, if it sent one."""
        row = self.index.db.execute("SELECT preview FROM tasks WHERE id = ?", [task_id]).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def queue_position(self, task: dict[str, Any]) -> int:
        """1 for the next task to start in its queue, 2 for the one after, …"""
        ahead = self.index.db.execute(
            "SELECT COUNT(*) FROM tasks WHERE state = 'queued' AND queue = ? AND id != ? AND "
            "(priority > ? OR (priority = ? AND created_at < ?))",
            [task["queue"], task["id"], task["priority"], task["priority"], task["created_at"]],
        ).fetchone()[0]
        return int(ahead) + 1

    def typical_duration(self, kind: str, size_key: str) -> float | None:
        """Median duration of the last ten successful runs of the same kind and size."""
        rows = self.index.db.execute(
            "SELECT duration_s FROM tasks WHERE kind = ? AND size_key = ? AND state = 'succeeded' "
            "AND duration_s IS NOT NULL ORDER BY finished_at DESC LIMIT 10",
            [kind, size_key],
        ).fetchall()
        return float(statistics.median(r[0] for r in rows)) if rows else None

    def eta(self, task: dict[str, Any]) -> float | None:
        """Seconds until the task finishes: the work ahead of it in its queue, shared among as many
        workers as the queue has been seen running side by side, then its own typical duration."""
        if task["state"] in FINISHED:
            return 0.0
        own = self.typical_duration(task["kind"], task["size_key"])
        if own is None:
            return None
        if task["state"] == "running":
            return round(max(0.0, own * (1 - float(task["progress"]))), 2)
        ahead = self.index.db.execute(
            "SELECT kind, size_key, state, progress FROM tasks WHERE queue = ? AND id != ? AND "
            "(state = 'running' OR (state = 'queued' AND cancel_requested = 0 AND "
            " (priority > ? OR (priority = ? AND created_at < ?)))) "
            "ORDER BY state = 'queued', priority DESC, created_at",
            [task["queue"], task["id"], task["priority"], task["priority"], task["created_at"]],
        ).fetchall()
        typical = {(task["kind"], task["size_key"]): own}  # one history query per kind and size

        def duration(kind: str, size_key: str) -> float:
            if (kind, size_key) not in typical:
                typical[kind, size_key] = self.typical_duration(kind, size_key) or own
            return typical[kind, size_key]

        # When each worker of the queue is next free: a running task's remaining time, 0 if idle;
        # the waiting tasks ahead go, in order, to whichever is free first.
        free = [duration(k, sk) * (1 - p) for k, sk, state, p in ahead if state == "running"]
        free += [0.0] * (self.parallelism(task["queue"]) - len(free))
        heapq.heapify(free)
        for kind, size_key, state, _ in ahead:
            if state == "queued":
                heapq.heapreplace(free, free[0] + duration(kind, size_key))
        start: float = free[0]
        if task.get("retry_at"):
            start = max(start, (datetime.fromisoformat(task["retry_at"]) - datetime.now(UTC)).total_seconds())
        return round(start + own, 2)

    def parallelism(self, queue: str) -> int:
        """How many tasks of ``queue`` the workers have run side by side lately (at least 1): the
        largest overlap among its last 50 runs. Remembered for a few seconds."""
        now = time.monotonic()
        cached = self._parallelism.get(queue)
        if cached is not None and now - cached[0] < 5.0:
            return cached[1]
        row = self.index.db.execute(
            "WITH recent AS (SELECT started_at, finished_at FROM tasks WHERE queue = ? AND started_at IS NOT NULL "
            "  AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 50) "
            "SELECT MAX((SELECT COUNT(*) FROM recent r2 WHERE r2.started_at <= r1.started_at "
            "  AND r2.finished_at > r1.started_at)) FROM recent r1",
            [queue],
        ).fetchone()
        value = max(1, int(row[0] or 1))
        self._parallelism[queue] = (now, value)
        return value

    def update(self, task_id: str, **fields: Any) -> None:
        if "outputs" in fields:
            fields["outputs"] = json.dumps(fields["outputs"], sort_keys=True)
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.index.db.execute(f"UPDATE tasks SET {sets} WHERE id = ?", [*fields.values(), task_id])  # noqa: S608

    def claim_next(self, queue: str, worker: str = "") -> str | None:
        """The id of the task :meth:`claim` started, or None."""
        task = self.claim(queue, worker)
        return str(task["id"]) if task is not None else None

    def claim(self, queue: str, worker: str = "") -> dict[str, Any] | None:
        """Mark the next task of ``queue`` running (highest priority, then oldest); the task, or None.

        Messages carry no task id: each is one turn of work for its queue, so priorities and queue
        positions are exact whatever order the broker delivers in, and a cancelled task is
        simply never claimed. A task waiting for its next attempt (``retry_at``) is skipped until
        then. ``worker`` names who runs it, for the message if that worker goes silent."""
        now = now_iso()
        return self._returning(
            "UPDATE tasks SET state = 'running', started_at = ?, heartbeat_at = ?, worker = ?, retry_at = NULL, "
            "  progress = 0, attempts = attempts + 1 WHERE id = ("
            "  SELECT id FROM tasks WHERE state = 'queued' AND queue = ? AND cancel_requested = 0 "
            "  AND (retry_at IS NULL OR retry_at <= ?) ORDER BY priority DESC, created_at LIMIT 1)",
            [now, now, worker, queue, now],
        )

    def heartbeat(self, task_ids: list[str]) -> None:
        """The worker running ``task_ids`` is alive (see :meth:`stale`)."""
        if task_ids:
            marks = ", ".join("?" * len(task_ids))
            self.index.db.execute(
                f"UPDATE tasks SET heartbeat_at = ? WHERE state = 'running' AND id IN ({marks})",  # noqa: S608
                [now_iso(), *task_ids],
            )

    def retry_later(self, task_id: str, attempt: int, delay_s: float, error: str) -> dict[str, Any] | None:
        """Put a running task back in its queue to run again after ``delay_s`` seconds, keeping
        ``error`` to show meanwhile. Only while attempt ``attempt`` is still the one running: the
        task, or None."""
        at = (datetime.now(UTC) + timedelta(seconds=delay_s)).isoformat(timespec="microseconds")
        return self._returning(
            "UPDATE tasks SET state = 'queued', retry_at = ?, error = ?, progress = 0, started_at = NULL, "
            "heartbeat_at = NULL, worker = NULL WHERE id = ? AND state = 'running' AND attempts = ?",
            [at, error, task_id, attempt],
        )

    def stale(self, older_than_s: float) -> list[dict[str, Any]]:
        """Running tasks whose worker has not said it is alive for ``older_than_s`` seconds."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=older_than_s)).isoformat(timespec="microseconds")
        rows = self.index.db.execute(
            "SELECT id FROM tasks WHERE state = 'running' AND COALESCE(heartbeat_at, started_at, created_at) < ?",
            [cutoff],
        ).fetchall()
        return [t for (task_id,) in rows if (t := self.get(task_id)) is not None]

    def waiting_turns(self, queue: str, older_than_s: float) -> tuple[int, int]:
        """(tasks of ``queue`` ready to run for more than ``older_than_s`` s, tasks running in it)."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=older_than_s)).isoformat(timespec="microseconds")
        ready, running = self.index.db.execute(
            "SELECT COALESCE(SUM(state = 'queued' AND cancel_requested = 0 AND COALESCE(retry_at, created_at) < ?), 0), "
            "COALESCE(SUM(state = 'running'), 0) FROM tasks WHERE queue = ? AND state IN ('queued', 'running')",
            [cutoff, queue],
        ).fetchone()
        return int(ready), int(running)

    def finish(self, task_id: str, state: str, *, error: str | None = None,
               outputs: list[dict[str, Any]] | None = None, attempt: int | None = None) -> dict[str, Any] | None:  # fmt: skip
        """End the task in ``state``; the task, or None. With ``attempt``, only if that attempt is
        still the one running (a worker that was given up for dead must not overwrite its
        successor): the condition is part of the write, so the watchdog cannot slip in between."""
        row = self.index.db.execute("SELECT started_at FROM tasks WHERE id = ?", [task_id]).fetchone()
        if row is None:
            return None
        started = datetime.fromisoformat(row[0]) if row[0] else None
        duration = (datetime.now(UTC) - started).total_seconds() if started else None
        progress = ", progress = 1.0" if state == "succeeded" else ""
        return self._returning(
            "UPDATE tasks SET state = ?, error = ?, outputs = ?, finished_at = ?, duration_s = ?, "  # noqa: S608
            f"heartbeat_at = NULL, retry_at = NULL{progress} WHERE id = ? "
            "AND (? IS NULL OR (attempts = ? AND state = 'running'))",
            [
                state,
                error,
                json.dumps(outputs or [], sort_keys=True),
                now_iso(),
                duration,
                task_id,
                attempt,
                attempt,
            ],
        )

    def discard(self, task_id: str) -> None:
        """Forget a task that was never queued (its message could not be sent)."""
        self.index.db.execute("DELETE FROM tasks WHERE id = ? AND state = 'queued'", [task_id])

    def request_cancel(self, task_id: str) -> str:
        """Cancel: a queued task is cancelled at once; a running one is asked to stop. Returns the state."""
        db = self.index.db
        db.execute(
            "UPDATE tasks SET state = 'cancelled', cancel_requested = 1, finished_at = ? WHERE id = ? AND state = 'queued'",
            [now_iso(), task_id],
        )
        db.execute("UPDATE tasks SET cancel_requested = 1 WHERE id = ? AND state = 'running'", [task_id])
        row = db.execute("SELECT state FROM tasks WHERE id = ?", [task_id]).fetchone()
        return str(row[0])

    def cancel_requested(self, task_id: str) -> bool:
        row = self.index.db.execute("SELECT cancel_requested FROM tasks WHERE id = ?", [task_id]).fetchone()
        return bool(row and row[0])

    def recover(self, *, fail_running: bool = True) -> tuple[list[str], list[str]]:
        """After a restart: interrupted tasks fail with the reason; queued ones are returned to re-send.

        ``fail_running=False`` when workers run elsewhere (Redis): a running task may be alive on
        another machine, and the watchdog (``tasks.reaper``) judges it by its heartbeats instead."""
        db = self.index.db
        interrupted = (
            [r[0] for r in db.execute("SELECT id FROM tasks WHERE state = 'running'").fetchall()]
            if fail_running
            else []
        )
        for task_id in interrupted:
            self.finish(
                task_id, "failed", error="The studio stopped while this task was running. Run it again."
            )
        queued = [r[0] for r in db.execute("SELECT id FROM tasks WHERE state = 'queued' ORDER BY created_at")]
        return interrupted, queued
