"""What went wrong with a task, in words a person can act on, and whether trying again can help.

Only *transient* failures are retried (with exponential backoff): a connection that dropped, a
broker or server that was away for a moment. Everything else — out of memory, a missing model,
bad parameters, a bug — fails at once, because running it again would fail the same way.

>>> explain(TransientError("The server did not answer.")).transient
True
>>> explain(MemoryError()).transient
False
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import redis


class TransientError(Exception):
    """A failure that may well not happen again: the task is retried later (with backoff).

    Raise it from a task kind for conditions outside the task's control, e.g. a server that
    did not answer. Its message is shown while the task waits for its next attempt.
    """


@dataclass(frozen=True)
class Failure:
    transient: bool
    message: str


OUT_OF_MEMORY = (
    "The {device} ran out of memory for this task. Try a smaller size or fewer steps, or run it "
    "when no other generation is using the {device}."
)


def explain(exc: BaseException) -> Failure:
    """Classify ``exc``: transient (retry it) or not, with a message for the person who asked."""
    if isinstance(exc, TransientError):
        return Failure(True, str(exc) or "A temporary problem stopped the task.")
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return Failure(True, "The connection to the task queue (Redis) was lost.")
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return Failure(True, "The studio's database was busy.")
    if _is_out_of_memory(exc):
        device = "GPU" if _on_gpu(exc) else "computer"
        return Failure(False, OUT_OF_MEMORY.format(device=device))
    # httpx: a worker handing its outputs back to a server that is restarting.
    if isinstance(exc, ConnectionError | TimeoutError | httpx.TransportError):
        return Failure(True, f"A connection failed ({type(exc).__name__}).")
    return Failure(False, f"The task failed unexpectedly ({type(exc).__name__}). It has been logged.")


def _is_out_of_memory(exc: BaseException) -> bool:
    # torch.cuda.OutOfMemoryError, MPS "out of memory" RuntimeErrors and CPU allocator failures:
    # recognised by name and words so this module needs no torch.
    text = str(exc).lower()
    return (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"
        or "out of memory" in text
        or "can't allocate memory" in text
    )


def _on_gpu(exc: BaseException) -> bool:
    text = f"{type(exc).__module__} {exc}".lower()
    return any(word in text for word in ("cuda", "mps", "gpu", "hip"))


@dataclass(frozen=True)
class RetryPolicy:
    """How often a task runs at most, how long between attempts, and when a silent worker counts
    as gone. ``STUDIO_TASK_MAX_ATTEMPTS``, ``STUDIO_TASK_RETRY_BASE_S`` and
    ``STUDIO_TASK_STALE_S`` set them (the same on the server and on every worker)."""

    max_attempts: int = 3
    base_s: float = 2.0
    cap_s: float = 300.0
    stale_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1, 2, …): base, 2 x base, …"""
        return float(min(self.cap_s, self.base_s * 2 ** max(0, attempt - 1)))

    @property
    def heartbeat_s(self) -> float:
        """How often a worker says it is still running its tasks: well inside ``stale_s``."""
        return max(0.2, self.stale_s / 5)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetryPolicy:
        env = os.environ if env is None else env
        default = cls()
        try:
            return cls(
                max_attempts=max(1, int(env.get("STUDIO_TASK_MAX_ATTEMPTS", default.max_attempts))),
                base_s=max(0.0, float(env.get("STUDIO_TASK_RETRY_BASE_S", default.base_s))),
                stale_s=max(1.0, float(env.get("STUDIO_TASK_STALE_S", default.stale_s))),
            )
        except ValueError as exc:
            raise ValueError(f"STUDIO_TASK_* settings must be numbers: {exc}") from None
