"""Running one task: state changes, progress, cancellation and outputs, each an event.

The runner is given what it needs (:class:`Runtime`) by whoever starts the workers: the server
for its in-process workers, ``tasks.worker_entry`` for ``studio worker`` processes. It is the same
code for both: the task rows are behind a :class:`~tasks.ledger.Ledger`, the project behind
:class:`~tasks.project_files.ProjectFiles` and the results behind a
:data:`~tasks.outputs.Delivery`, each local on the server and HTTP in a remote worker.
"""

from __future__ import annotations

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
from tasks.ledger import Ledger, event, preview_url
from tasks.outputs import Delivery, DeliveryRefused
from tasks.project_files import LocalProject, ProjectFiles

__all__ = ["Heartbeats", "Runtime", "event", "execute_next", "make_actors", "preview_url", "turn_sender"]

log = logging.getLogger("tasks.runner")
PROGRESS_EVERY_S = 0.05
CANCEL_CHECK_S = 0.02


@dataclass
class Runtime:
    ledger: Ledger
    # The project files of a claimed task (None: the project was deleted).
    open_project: Callable[[dict[str, Any]], ProjectFiles | None]
    models_dir: Path
    # Hands the outputs of a finished task to the server (in process, or over HTTP: tasks.outputs).
    deliver: Delivery
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    heartbeats: Heartbeats | None = None

    def __post_init__(self) -> None:
        if self.heartbeats is None:
            self.heartbeats = Heartbeats(self.ledger.heartbeat, self.policy.heartbeat_s)


class Heartbeats:
    """Tells the task rows, every few seconds, that this process is still running its tasks; a
    worker killed mid-task stops doing so and the watchdog (``tasks.reaper``) notices."""

    def __init__(self, beat: Callable[[list[str]], None], every_s: float) -> None:
        self.beat, self.every_s = beat, every_s
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
                self.beat(running)
            except Exception:
                log.exception("heartbeat_failed")


def execute_next(runtime: Runtime, queue: str) -> str | None:
    """Claim the next task of ``queue`` and run it to its end; returns its id (None: nothing waiting)."""
    assert runtime.heartbeats is not None
    task = runtime.ledger.claim(queue, runtime.heartbeats.name)
    if task is None:
        return None
    runtime.heartbeats.add(task["id"])
    try:
        _attempt(runtime, task, int(task["attempts"]))
    finally:
        runtime.heartbeats.discard(task["id"])
    return str(task["id"])


def _asked_now_and_then(ask: Callable[[], bool]) -> Callable[[], bool]:
    """``ask``, put at most every CANCEL_CHECK_S: generators check for a cancel before every
    block of a step, far more often than a person can notice; once yes, always yes."""
    known, at = [False], [-CANCEL_CHECK_S]

    def cancelled() -> bool:
        now = time.monotonic()
        if not known[0] and now - at[0] >= CANCEL_CHECK_S:
            known[0], at[0] = ask(), now
        return known[0]

    return cancelled


def _attempt(runtime: Runtime, task: dict[str, Any], attempt: int) -> None:
    ledger, task_id = runtime.ledger, task["id"]
    kind = KINDS.get(task["kind"])
    project = runtime.open_project(task)
    last = [0.0]

    def progress(fraction: float) -> None:
        # Steps closer together than PROGRESS_EVERY_S are neither stored nor sent: on a fast GPU
        # a step is a few milliseconds of Python, and a row write each step would slow it.
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or fraction >= 1.0:
            last[0] = now
            ledger.progress(task_id, fraction)

    def preview(png: bytes) -> None:
        ledger.preview(task_id, png)

    ctx = Context(task_id, project or LocalProject(Path("/nonexistent")), runtime.models_dir, progress,
                  _asked_now_and_then(lambda: ledger.cancel_requested(task_id)), attempt=attempt,
                  preview=preview)  # fmt: skip
    try:
        if project is None:
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
        ended = ledger.finish(task_id, attempt, "cancelled" if exc.cancelled else "failed",
                              error="Cancelled." if exc.cancelled else str(exc))  # fmt: skip
    except Cancelled:
        _discard(ctx)
        ended = ledger.finish(task_id, attempt, "cancelled", error="Cancelled.")
    except TaskFailed as exc:
        _discard(ctx)
        ended = ledger.finish(task_id, attempt, "failed", error=str(exc))
    except ValidationError as exc:
        ended = ledger.finish(task_id, attempt, "failed",
                              error=f"The parameters are not valid: {exc.errors()[0]['msg']}")  # fmt: skip
    except Exception as exc:
        _discard(ctx)
        failure = explain(exc)
        policy = runtime.policy
        if not failure.transient:
            log.exception("task_crashed task=%s", task_id)
            ended = ledger.finish(task_id, attempt, "failed", error=failure.message)
        elif attempt < policy.max_attempts and not ledger.cancel_requested(task_id):
            retry_in = policy.backoff(attempt)
            log.warning("task_retrying task=%s attempt=%s in=%ss error=%r", task_id, attempt, retry_in, exc)
            ended = ledger.retry_later(task_id, attempt, retry_in, f"{failure.message} It will be tried again "
                                       f"in {retry_in:g} s (attempt {attempt} of {policy.max_attempts} failed).")  # fmt: skip
        else:
            ended = ledger.finish(task_id, attempt, "failed", error=f"{failure.message} Gave up after "
                                  f"{attempt} attempts; run it again later.")  # fmt: skip
    else:
        ended = ledger.finish(task_id, attempt, "succeeded", outputs=stored)
    finally:
        ctx.cleanup()
        if project is not None:
            project.close()
    if not ended:
        # The watchdog gave this attempt up for dead meanwhile; its successor speaks for the task.
        log.warning("task_attempt_superseded task=%s attempt=%s", task_id, attempt)


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
