"""Where a running task's state changes are written and announced: the ledger.

The runner (``tasks.runner``) never touches the task rows itself; it tells a :class:`Ledger`
that it claimed a task, how far it is, that it has a preview, whether someone cancelled it, and
how it ended. Two implementations keep one code path for every worker:

- :class:`LocalLedger` writes the row in the studio's SQLite index and publishes the event
  (``/events`` on every server process, webhooks). The server's in-process workers use it, and
  so does the server's worker API (``app.worker_api``) on behalf of remote workers.
- ``tasks.remote.RemoteLedger`` is what ``studio worker`` uses: each call is a request to that
  worker API, so a worker on another machine needs nothing of the server's disk.

>>> ledger = LocalLedger(store, publish)  # doctest: +SKIP
>>> task = ledger.claim("cpu", "gpu-box:4242")  # doctest: +SKIP
>>> ledger.finish(task["id"], task["attempts"], "succeeded", outputs=[])  # doctest: +SKIP
True
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any, Protocol

from tasks.store import TaskStore

log = logging.getLogger("tasks.ledger")
Publish = Callable[[dict[str, Any]], None]


def event(kind: str, task: dict[str, Any]) -> dict[str, Any]:
    """The ``/events`` message ``task.<kind>`` about ``task``."""
    return {"type": f"task.{kind}", "project_id": task["project_id"], "task": task}


def preview_url(png: bytes) -> str:
    """A preview as the data URL a ``task.preview`` event carries (an <img> shows it as it is)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class Ledger(Protocol):
    """The state of the tasks a worker runs (see the module docstring)."""

    def claim(self, queue: str, worker: str) -> dict[str, Any] | None:
        """Start the next task of ``queue`` (highest priority, then oldest; a cancelled one is
        never started) and announce it running; the task, or None when nothing waits."""
        ...

    def progress(self, task_id: str, fraction: float) -> object:
        """Record how far the task is (0..1) and send ``task.progress``. (What it
        returns is for the server's worker API; the runner ignores it.)"""
        ...

    def preview(self, task_id: str, png: bytes) -> object:
        """Keep ``png`` as the task's latest preview and send ``task.preview`` (return: as for
        :meth:`progress`)."""
        ...

    def cancel_requested(self, task_id: str) -> bool:
        """Whether someone asked the task to stop (asked between steps)."""
        ...

    def heartbeat(self, task_ids: list[str]) -> None:
        """The worker running ``task_ids`` is alive (the watchdog, ``tasks.reaper``, listens)."""
        ...

    def finish(self, task_id: str, attempt: int, state: str, *, error: str | None = None,
               outputs: list[dict[str, Any]] | None = None) -> bool:  # fmt: skip
        """End attempt ``attempt`` in ``state`` and announce it; False when that attempt was
        given up for dead meanwhile (its successor speaks for the task)."""
        ...

    def retry_later(self, task_id: str, attempt: int, delay_s: float, error: str) -> bool:
        """Put the task back in its queue for another attempt in ``delay_s`` seconds, announce
        ``task.retrying`` and send its queue a turn for then; False as for :meth:`finish`."""
        ...


class LocalLedger:
    """:class:`Ledger` over the task rows in SQLite; events go to ``publish``."""

    def __init__(self, store: TaskStore, publish: Publish,
                 send_turn: Callable[[str, float], None] = lambda queue, delay_s: None) -> None:  # fmt: skip
        self.store, self.publish = store, publish
        # One more turn of a queue after a delay (wired to the actors by whoever builds them).
        self.send_turn = send_turn

    def claim(self, queue: str, worker: str) -> dict[str, Any] | None:
        task = self.store.claim(queue, worker)
        if task is not None:
            self.publish(event("running", task))
        return task

    def progress(self, task_id: str, fraction: float) -> dict[str, Any] | None:
        """… and returns the task (None: there is none)."""
        task = self.store.set_progress(task_id, fraction)
        if task is not None:
            self.publish(event("progress", task))
        return task

    def preview(self, task_id: str, png: bytes) -> dict[str, Any] | None:
        """… and returns the task (None: it is not running)."""
        task = self.store.set_preview(task_id, png)
        if task is not None:
            self.publish({**event("preview", task), "preview": preview_url(png)})
        return task

    def cancel_requested(self, task_id: str) -> bool:
        return self.store.cancel_requested(task_id)

    def heartbeat(self, task_ids: list[str]) -> None:
        self.store.heartbeat(task_ids)

    def finish(self, task_id: str, attempt: int, state: str, *, error: str | None = None,
               outputs: list[dict[str, Any]] | None = None) -> bool:  # fmt: skip
        final = self.store.finish(task_id, state, error=error, outputs=outputs, attempt=attempt)
        if final is None:
            return False
        self.publish(event(final["state"], final))
        return True

    def retry_later(self, task_id: str, attempt: int, delay_s: float, error: str) -> bool:
        final = self.store.retry_later(task_id, attempt, delay_s, error)
        if final is None:
            return False
        self.publish(event("retrying", final))
        try:
            self.send_turn(final["queue"], delay_s)
        except Exception as exc:  # the watchdog sends it a turn once the broker answers again
            log.warning("retry_turn_not_sent task=%s error=%r", task_id, exc)
        return True
