"""Running one task: state changes, progress, cancellation and outputs, each an event.

The runner is given what it needs (:class:`Runtime`) by whoever starts the workers: the server
for its in-process workers, ``tasks.worker_entry`` for ``studio worker`` processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
from pydantic import ValidationError

from tasks.kinds import KINDS, Cancelled, Context, TaskFailed
from tasks.store import TaskStore

log = logging.getLogger("tasks.runner")
PROGRESS_EVERY_S = 0.05


@dataclass
class Runtime:
    store: TaskStore
    project_root: Callable[[str], Path | None]
    models_dir: Path
    publish: Callable[[dict[str, Any]], None]


def event(kind: str, task: dict[str, Any]) -> dict[str, Any]:
    return {"type": f"task.{kind}", "project_id": task["project_id"], "task": task}


def execute_next(runtime: Runtime, queue: str) -> str | None:
    """Claim the next task of ``queue`` and run it to its end; returns its id (None: nothing waiting)."""
    task_id = runtime.store.claim_next(queue)
    if task_id is not None:
        _run(runtime, task_id)
    return task_id


def _run(runtime: Runtime, task_id: str) -> None:
    store = runtime.store
    task = store.get(task_id)
    assert task is not None
    runtime.publish(event("running", task))
    kind = KINDS[task["kind"]]
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

    ctx = Context(task_id, root or Path("/nonexistent"), runtime.models_dir, progress,
                  lambda: store.cancel_requested(task_id))  # fmt: skip
    try:
        if root is None:
            raise TaskFailed("The project of this task no longer exists (it was deleted).")
        params = kind.params.model_validate(task["params"])
        kind.run(ctx, params)
        ctx.check()
    except Cancelled:
        _discard(ctx)
        store.finish(task_id, "cancelled", error="Cancelled.")
    except TaskFailed as exc:
        _discard(ctx)
        store.finish(task_id, "failed", error=str(exc))
    except ValidationError as exc:
        store.finish(task_id, "failed", error=f"The parameters are not valid: {exc.errors()[0]['msg']}")
    except Exception as exc:
        log.exception("task_crashed task=%s", task_id)
        _discard(ctx)
        store.finish(
            task_id,
            "failed",
            error=f"The task failed unexpectedly ({type(exc).__name__}). It has been logged.",
        )
    else:
        store.finish(task_id, "succeeded", outputs=ctx.outputs)
    final = store.get(task_id)
    assert final is not None
    runtime.publish(event(final["state"], final))


def _discard(ctx: Context) -> None:
    # Partial outputs of a cancelled or failed task are not kept.
    for output in ctx.outputs:
        (ctx.root / output["path"]).unlink(missing_ok=True)
    ctx.outputs.clear()


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
