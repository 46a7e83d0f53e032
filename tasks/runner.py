"""Running one task: state changes, progress, cancellation and outputs, each an event.

The runner is given what it needs (:class:`Runtime`) by whoever starts the workers: the server
for its in-process workers, ``tasks.worker_entry`` for ``studio worker`` processes.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dramatiq
from pydantic import ValidationError

from tasks.failures import RetryPolicy, explain
from tasks.kinds import KINDS, Cancelled, Context, TaskFailed
from tasks.outputs import Delivery, DeliveryRefused
from tasks.store import TaskStore

log = logging.getLogger("tasks.runner")
PROGRESS_EVERY_S = 0.05


@dataclass
class Runtime:
    store: TaskStore
    project_root: Callable[[str], Path | None]
    models_dir: Path
    publish: Callable[[dict[str, Any]], None]
    # Hands the outputs of a finished task to the server (in process, or over HTTP: tasks.outputs).
    deliver: Delivery
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # Sends one more turn of a queue after a delay in seconds (wired to the actors by whoever
    # builds them); a transient failure uses it to come back after its backoff.
    send_turn: Callable[[str, float], None] = lambda queue, delay_s: None
    heartbeats: Heartbeats | None = None

    def __post_init__(self) -> None:
        if self.heartbeats is None:
            self.heartbeats = Heartbeats(self.store, self.policy.heartbeat_s)


class Heartbeats:
    """Tells the task rows, every few seconds, that this process is still running its tasks; a
    worker killed mid-task stops doing so and the watchdog (``tasks.reaper``) notices."""

    def __init__(self, store: TaskStore, every_s: float) -> None:
        self.store, self.every_s = store, every_s
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, task_id: str) -> None:
        with self._lock:
            self._running.add(task_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._beat, name="studio-heartbeats", daemon=True)
                self._thread.start()

    def discard(self, task_id: str) -> None:
        with self._lock:
            self._running.discard(task_id)

    def _beat(self) -> None:
        while True:
            time.sleep(self.every_s)
            with self._lock:
                running = list(self._running)
            try:
                self.store.heartbeat(running)
            except Exception:
                log.exception("heartbeat_failed")


def event(kind: str, task: dict[str, Any]) -> dict[str, Any]:
    return {"type": f"task.{kind}", "project_id": task["project_id"], "task": task}


def preview_url(png: bytes) -> str:
    """A preview as the data URL a ``task.preview`` event carries (an <img> shows it as it is)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def execute_next(runtime: Runtime, queue: str) -> str | None:
    """Claim the next task of ``queue`` and run it to its end; returns its id (None: nothing waiting)."""
    assert runtime.heartbeats is not None
    task_id = runtime.store.claim_next(queue, runtime.heartbeats.name)
    if task_id is not None:
        _run(runtime, task_id)
    return task_id


def _run(runtime: Runtime, task_id: str) -> None:
    store = runtime.store
    task = store.get(task_id)
    assert task is not None
    attempt = int(task["attempts"])
    assert runtime.heartbeats is not None
    runtime.heartbeats.add(task_id)
    try:
        _attempt(runtime, task, attempt)
    finally:
        runtime.heartbeats.discard(task_id)


def _attempt(runtime: Runtime, task: dict[str, Any], attempt: int) -> None:
    store, task_id = runtime.store, task["id"]
    runtime.publish(event("running", task))
    kind = KINDS.get(task["kind"])
    root = runtime.project_root(task["project_id"])
    last = [0.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        store.update(task_id, progress=max(0.0, min(1.0, fraction)))
        if now - last[0] >= PROGRESS_EVERY_S or fraction >= 1.0:
            last[0] = now
            current = store.get(task_id)
            if current is not None:
                runtime.publish(event("progress", current))

    def preview(png: bytes) -> None:
        current = store.get(task_id)
        if current is not None:
            runtime.publish({**event("preview", current), "preview": preview_url(png)})

    ctx = Context(task_id, root or Path("/nonexistent"), runtime.models_dir, progress,
                  lambda: store.cancel_requested(task_id), attempt=attempt, preview=preview)  # fmt: skip
    retry_in: float | None = None
    try:
        if root is None:
            raise TaskFailed("The project of this task no longer exists (it was deleted).")
        if kind is None:
            raise TaskFailed(f"The worker that took this task does not know the kind '{task['kind']}': "
                             "update the studio on that machine.")  # fmt: skip
        params = kind.params.model_validate(task["params"])
        kind.run(ctx, params)
        ctx.check()
        stored = runtime.deliver(task_id, ctx.outputs) if ctx.outputs else []
    except DeliveryRefused as exc:
        _discard(ctx)
        ended = store.finish(task_id, "cancelled" if exc.cancelled else "failed",
                             error="Cancelled." if exc.cancelled else str(exc), attempt=attempt)  # fmt: skip
    except Cancelled:
        _discard(ctx)
        ended = store.finish(task_id, "cancelled", error="Cancelled.", attempt=attempt)
    except TaskFailed as exc:
        _discard(ctx)
        ended = store.finish(task_id, "failed", error=str(exc), attempt=attempt)
    except ValidationError as exc:
        ended = store.finish(task_id, "failed", error=f"The parameters are not valid: {exc.errors()[0]['msg']}",
                             attempt=attempt)  # fmt: skip
    except Exception as exc:
        _discard(ctx)
        failure = explain(exc)
        policy = runtime.policy
        if not failure.transient:
            log.exception("task_crashed task=%s", task_id)
            ended = store.finish(task_id, "failed", error=failure.message, attempt=attempt)
        elif attempt < policy.max_attempts and not store.cancel_requested(task_id):
            retry_in = policy.backoff(attempt)
            log.warning("task_retrying task=%s attempt=%s in=%ss error=%r", task_id, attempt, retry_in, exc)
            ended = store.retry_later(task_id, attempt, retry_in, f"{failure.message} It will be tried again "
                                      f"in {retry_in:g} s (attempt {attempt} of {policy.max_attempts} failed).")  # fmt: skip
        else:
            ended = store.finish(task_id, "failed", attempt=attempt, error=f"{failure.message} Gave up after "
                                 f"{attempt} attempts; run it again later.")  # fmt: skip
    else:
        ended = store.finish(task_id, "succeeded", outputs=stored, attempt=attempt)
    finally:
        ctx.cleanup()
    if not ended:
        # The watchdog gave this attempt up for dead meanwhile; its successor speaks for the task.
        log.warning("task_attempt_superseded task=%s attempt=%s", task_id, attempt)
        return
    final = store.get(task_id)
    assert final is not None
    if retry_in is not None:
        runtime.publish(event("retrying", final))
        try:
            runtime.send_turn(task["queue"], retry_in)
        except Exception as exc:  # the watchdog sends it a turn once the broker answers again
            log.warning("retry_turn_not_sent task=%s error=%r", task_id, exc)
    else:
        runtime.publish(event(final["state"], final))


def _discard(ctx: Context) -> None:
    # Outputs of a cancelled or failed task never reach the project: they are dropped here.
    ctx.outputs.clear()
    ctx.cleanup()


def make_actors(
    broker: dramatiq.Broker, runtime: Callable[[], Runtime]
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """One actor per queue, bound to ``broker``: ``gpu`` runs one task at a time (its worker has one
    thread), ``cpu`` several."""

    actors: dict[str, dramatiq.Actor[Any, Any]] = {}
    for queue in ("gpu", "cpu"):

        def run(queue: str = queue) -> None:
            execute_next(runtime(), queue)

        actors[queue] = dramatiq.Actor(
            run, broker=broker, actor_name=f"run_{queue}_task", queue_name=queue, priority=0,
            options={"max_retries": 0, "time_limit": 6 * 3600 * 1000},
        )  # fmt: skip
    return actors


def turn_sender(actors: dict[str, dramatiq.Actor[Any, Any]]) -> Callable[[str, float], None]:
    """``send_turn(queue, delay_s)`` for ``actors``: one more turn of ``queue``, now or later."""

    def send_turn(queue: str, delay_s: float = 0.0) -> None:
        if delay_s > 0:
            actors[queue].send_with_options(delay=int(delay_s * 1000))
        else:
            actors[queue].send()

    return send_turn
