"""Task rows in the studio's SQLite index: one row per task, the durable truth about it.

A task is a row (kind, params, project, requester, state, progress, attempts, error, outputs,
timestamps) as well as a Dramatiq message, so a restart can tell what was queued and what was
interrupted.
"""

from __future__ import annotations

import json
import statistics
import uuid
from datetime import UTC, datetime
from typing import Any

from sync.db import Index

FINISHED = ("succeeded", "failed", "cancelled")
COLUMNS = (
    "id, project_id, kind, queue, params, node_id, requester_id, priority, state, progress, error, outputs, "
    "attempts, cancel_requested, size_key, created_at, started_at, finished_at, duration_s"
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class TaskStore:
    def __init__(self, index: Index) -> None:
        self.index = index

    def create(self, *, project_id: str, kind: str, queue: str, params: dict[str, Any], node_id: str | None,
               requester_id: str | None, priority: int = 0, size_key: str = "") -> dict[str, Any]:  # fmt: skip
        task_id = str(uuid.uuid4())
        self.index.db.execute(
            f"INSERT INTO tasks({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, NULL, '[]', 0, 0, ?, ?, "  # noqa: S608
            "NULL, NULL, NULL)",
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
        keys = [c.strip() for c in COLUMNS.split(",")]
        task = dict(zip(keys, row, strict=True))
        task["params"] = json.loads(task["params"])
        task["outputs"] = json.loads(task["outputs"])
        task["cancel_requested"] = bool(task["cancel_requested"])
        task["queue_position"] = self.queue_position(task) if task["state"] == "queued" else 0
        task["eta_s"] = self.eta(task)
        return task

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
        """Seconds until the task finishes: its own typical duration, plus the work ahead of it."""
        if task["state"] in FINISHED:
            return 0.0
        own = self.typical_duration(task["kind"], task["size_key"])
        if own is None:
            return None
        if task["state"] == "running":
            return round(max(0.0, own * (1 - float(task["progress"]))), 2)
        ahead = self.index.db.execute(
            "SELECT kind, size_key, state, progress FROM tasks WHERE queue = ? AND id != ? AND "
            "(state = 'running' OR (state = 'queued' AND (priority > ? OR (priority = ? AND created_at < ?))))",
            [task["queue"], task["id"], task["priority"], task["priority"], task["created_at"]],
        ).fetchall()
        total = own
        for kind, size_key, state, progress in ahead:
            d = self.typical_duration(kind, size_key) or own
            total += d * (1 - progress) if state == "running" else d
        return round(total, 2)

    def update(self, task_id: str, **fields: Any) -> None:
        if "outputs" in fields:
            fields["outputs"] = json.dumps(fields["outputs"], sort_keys=True)
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.index.db.execute(f"UPDATE tasks SET {sets} WHERE id = ?", [*fields.values(), task_id])  # noqa: S608

    def claim_next(self, queue: str) -> str | None:
        """Mark the next task of ``queue`` running (highest priority, then oldest); its id, or None.

        Messages carry no task id: each is one turn of work for its queue, so priorities and queue
        positions are exact whatever order the broker delivers in, and a cancelled task is
        simply never claimed."""
        row = self.index.db.execute(
            "UPDATE tasks SET state = 'running', started_at = ?, attempts = attempts + 1 WHERE id = ("
            "  SELECT id FROM tasks WHERE state = 'queued' AND queue = ? AND cancel_requested = 0 "
            "  ORDER BY priority DESC, created_at LIMIT 1) RETURNING id",
            [now_iso(), queue],
        ).fetchone()
        return str(row[0]) if row else None

    def finish(self, task_id: str, state: str, *, error: str | None = None,
               outputs: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
        row = self.index.db.execute("SELECT started_at FROM tasks WHERE id = ?", [task_id]).fetchone()
        started = datetime.fromisoformat(row[0]) if row and row[0] else None
        duration = (datetime.now(UTC) - started).total_seconds() if started else None
        self.update(task_id, state=state, error=error, outputs=outputs or [], finished_at=now_iso(),
                    duration_s=duration, **({"progress": 1.0} if state == "succeeded" else {}))  # fmt: skip

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

    def recover(self) -> tuple[list[str], list[str]]:
        """After a restart: interrupted tasks fail with the reason; queued ones are returned to re-send."""
        db = self.index.db
        interrupted = [r[0] for r in db.execute("SELECT id FROM tasks WHERE state = 'running'").fetchall()]
        for task_id in interrupted:
            self.finish(
                task_id, "failed", error="The studio stopped while this task was running. Run it again."
            )
        queued = [r[0] for r in db.execute("SELECT id FROM tasks WHERE state = 'queued' ORDER BY created_at")]
        return interrupted, queued
