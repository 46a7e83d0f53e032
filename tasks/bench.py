"""``bench.steps``: a trivial task kind for benchmarks and tests, never shown to users.

It exists only where ``STUDIO_BENCH_TASKS=true`` (``scripts/bench/tasks.py``, the tests): the
server and every worker then register it with :func:`enable`. It reports progress every step,
can be cancelled between steps, and can be told to fail the ways real tasks fail, so the
failure handling is exercised through the real runner, broker and workers.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from tasks.failures import TransientError
from tasks.kinds import KINDS, Context, TaskKind

KIND = "bench.steps"


class BenchParams(BaseModel):
    steps: int = Field(5, ge=1, le=100_000, description="Progress steps.")
    step_ms: float = Field(0.0, ge=0, le=60_000, description="Time each step takes.")
    fail_first: int = Field(0, ge=0, le=100, description="Attempts that fail with a transient error first.")
    fail: Literal["", "memory", "crash"] = Field(
        "", description="Fail at the first step: out of memory, or a bug."
    )


def run_bench(ctx: Context, params: BenchParams) -> None:
    for step in range(params.steps):
        ctx.check()
        if step == 0:
            if ctx.attempt <= params.fail_first:
                raise TransientError(f"The bench server did not answer (attempt {ctx.attempt}).")
            if params.fail == "memory":
                _ = bytearray(1 << 60)  # a real allocation failure: more than any machine has
            if params.fail == "crash":
                raise ZeroDivisionError("division by zero")
        if params.step_ms:
            time.sleep(params.step_ms / 1000)
        ctx.progress((step + 1) / params.steps)


BENCH = TaskKind(
    KIND, "cpu", BenchParams, run_bench, size_key=lambda p: f"{p.steps}x{p.step_ms:g}",
    description="Benchmark and test task (enabled by STUDIO_BENCH_TASKS).",
)  # fmt: skip


def enable() -> None:
    """Register ``bench.steps`` in this process."""
    KINDS[KIND] = BENCH
