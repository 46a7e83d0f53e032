"""The watchdog: no task stays "running" after its worker died, and no waiting task is forgotten.

Workers write a heartbeat on the rows of the tasks they run (``tasks.runner.Heartbeats``). A
sweep, run every few seconds by the server, finds running tasks whose heartbeat is older than
``RetryPolicy.stale_s`` — a worker killed with ``kill -9``, a machine that lost power — and puts
them back in their queue for another attempt, or fails them with the reason once they have had
their attempts.

Each broker message is one turn of a queue, not a particular task. Turns can be lost: Redis
restarted without persistence, or a dead worker's prefetched messages that Redis hands back
only much later. The sweep tops a queue up with fresh turns when tasks are ready in it, none is
running and the broker holds fewer messages than there are ready tasks. A turn too many is
harmless: it finds nothing to claim.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tasks.failures import RetryPolicy
from tasks.store import TaskStore

log = logging.getLogger("tasks.reaper")
QUEUES = ("gpu", "cpu")
# A task enqueued a moment ago may still have its message on the way to the broker.
TURN_GRACE_S = 2.0


@dataclass
class Watchdog:
    store: TaskStore
    policy: RetryPolicy
    publish: Callable[[dict[str, Any]], None]
    send_turn: Callable[[str, float], None]
    backlog: Callable[[str], int]

    @property
    def every_s(self) -> float:
        """How often to sweep: often enough that a dead worker is noticed soon after ``stale_s``."""
        return min(5.0, max(0.2, self.policy.stale_s / 3))

    def sweep(self) -> dict[str, list[str]]:
        """One pass; returns which tasks were retried, failed or cancelled, and topped-up queues."""
        done: dict[str, list[str]] = {"retried": [], "failed": [], "cancelled": [], "turns": []}
        for task in self.store.stale(self.policy.stale_s):
            outcome = self._give_up_on_worker(task)
            if outcome:
                done[outcome].append(task["id"])
        for queue in QUEUES:
            ready, running = self.store.waiting_turns(queue, TURN_GRACE_S)
            if ready and not running:
                missing = ready - self.backlog(queue)
                for _ in range(max(0, missing)):
                    self.send_turn(queue, 0.0)
                if missing > 0:
                    log.warning("turns_topped_up queue=%s turns=%s", queue, missing)
                    done["turns"].append(f"{queue}:{missing}")
        return done

    def _give_up_on_worker(self, task: dict[str, Any]) -> str | None:
        store, policy = self.store, self.policy
        attempt = int(task["attempts"])
        who = task.get("worker") or "its worker"
        reason = f"The worker stopped responding ({who} was silent for more than {policy.stale_s:g} s)."
        if task["cancel_requested"]:
            if ended := store.finish(task["id"], "cancelled", error="Cancelled.", attempt=attempt):
                self._announce("cancelled", ended)
                return "cancelled"
        elif attempt < policy.max_attempts:
            delay = policy.backoff(attempt)
            error = f"{reason} It will be tried again in {delay:g} s (attempt {attempt} of {policy.max_attempts} failed)."
            if ended := store.retry_later(task["id"], attempt, delay, error):
                self._announce("retrying", ended)
                self.send_turn(task["queue"], delay)
                return "retried"
        else:
            error = f"{reason} Gave up after {attempt} attempts; run it again later."
            if ended := store.finish(task["id"], "failed", error=error, attempt=attempt):
                self._announce("failed", ended)
                return "failed"
        return None

    def _announce(self, kind: str, task: dict[str, Any]) -> None:
        log.warning("task_reaped task=%s outcome=%s", task["id"], kind)
        self.publish({"type": f"task.{kind}", "project_id": task["project_id"], "task": task})
