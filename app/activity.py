"""The project's activity feed (``GET /api/projects/{id}/activity``): one line per thing done.

A line that records an ``/events`` message carries the event's id, and is written once however
many server processes hear of the event: task events from ``studio worker`` processes reach every
server through Redis, and each of them offers the line; the first insert wins, the others are
ignored (a unique index on ``activity.event_id``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from app.studio import Studio, now_iso

Publish = Callable[[dict[str, Any]], None]
TASK_WORDS = {"succeeded": "finished", "failed": "failed", "cancelled": "was cancelled"}


def record_activity(studio: Studio, project_id: str, user_id: str | None, kind: str, summary: str,
                    detail: dict[str, Any], *, event_id: str | None = None, time: str | None = None) -> bool:  # fmt: skip
    """One line of the project's activity feed; False when the line of ``event_id`` was written
    already (by this or another server process).

    >>> record_activity(studio, pid, user.id, "asset.uploaded", "Ada uploaded hero.png", event)  # doctest: +SKIP
    True
    """
    cursor = studio.index.db.execute(
        "INSERT OR IGNORE INTO activity(project_id, time, user_id, user_name, kind, summary, detail, event_id) "
        "VALUES (?, ?, ?, COALESCE((SELECT name FROM users WHERE id = ?), 'studio'), ?, ?, ?, ?)",
        [project_id, time or now_iso(), user_id, user_id, kind, summary, json.dumps(detail, default=str),
         event_id],
    )  # fmt: skip
    return bool(cursor.rowcount == 1)


def task_activity(studio: Studio, publish: Publish) -> Callable[[dict[str, Any]], None]:
    """What a server does with every task event it hears of (its own, or a worker's through
    Redis): how a task ended goes to the activity, once; a thumbnail that could not be made is
    an ``asset.thumbnail.failed`` event of its own, published by the server that wrote the line."""

    def observe(event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        task = event.get("task")
        ended = kind.removeprefix("task.")
        if not kind.startswith("task.") or ended not in TASK_WORDS or not isinstance(task, dict):
            return
        summary = f"{task['kind']} {TASK_WORDS[ended]}" + (f": {task['error']}" if ended == "failed" else "")
        first = record_activity(studio, task["project_id"], task["requester_id"], kind, summary,
                                {"task": task["id"], "outputs": task["outputs"]}, event_id=event.get("id"),
                                time=task["finished_at"] or "")  # fmt: skip
        if first and task["kind"] == "asset.thumbnail" and ended == "failed":
            failed = {"type": "asset.thumbnail.failed", "project_id": task["project_id"],
                      "asset": task["params"].get("asset"), "source": task["params"].get("path"),
                      "error": task["error"]}  # fmt: skip
            publish(failed)
            record_activity(studio, task["project_id"], task["requester_id"], failed["type"],
                            f"No thumbnail for {task['params'].get('path')}: {task['error']}", failed,
                            event_id=failed.get("id"))  # fmt: skip

    return observe
