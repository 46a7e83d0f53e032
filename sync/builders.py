"""Builder processes for bursts of new projects.

Making a project is mostly file-system calls (some forty folders and files, a pack, an index),
with Python in between: in the server's own process, creations that arrive together wait for one
another (the workspace builds one at a time, since side by side they fight over the GIL). When
more than one creation is in flight, :class:`Builders` hands the repository building to a small
pool of processes, so a burst uses every core. A creation that arrives alone is built in a
thread, as before: a studio that is never asked for several projects at once never starts a
builder process. The folder a builder makes is moved into place and registered by the server
(:meth:`sync.workspace.Workspace.place_built`), so what lands in ``Projects/`` and the index is
decided in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sync import repo
from sync.lifetime import die_with_parent
from sync.model import State
from sync.workspace import Workspace, build_repository

log = logging.getLogger("sync.builders")
BUILDER_NICENESS = 10  # added to the server's: builders run when the server's threads need no CPU


def default_processes() -> int:
    """Two builder processes on a machine with more than one core; none on a single core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(2, cores) if cores > 1 else 0


def _builder_started(parent: int) -> None:
    """In a new builder process: end with the server, and give way to it for the CPU.

    The server's event loop is the one thread every request passes through, several times per
    creation; at equal priority the scheduler shared the two cores evenly between it and the
    builders, and each of a creation's turns on the loop waited for a time slice (about 25 ms
    at the median in a burst of 50 clients, against 6-14 ms with the builders niced)."""
    with contextlib.suppress(OSError):
        os.nice(BUILDER_NICENESS)
    die_with_parent(signal.SIGKILL, parent)


def _build(staging: str, state: State, author: repo.Author, message: str, config: bytes) -> str:
    """In a builder process: the repository of a new project, in a new folder under ``staging``."""
    return str(build_repository(Path(staging), state, author, message, repo.Skeleton(config=config)))


class _Claim:
    """Who gets a built folder: the waiter, or, once it gave up, nobody (the folder is removed).

    Tied to the build itself (the thread, or the builder process's job), not to the event loop,
    so a folder finished after its waiter was cancelled, or after the loop stopped, still goes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = False
        self._built: Path | None = None

    def built(self, path: Path) -> None:
        with self._lock:
            self._built = path
            if not self._abandoned:
                return
        shutil.rmtree(path, ignore_errors=True)

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            path = self._built
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


class Builders:
    """Builds new projects' repositories for an event loop: in a thread when alone, in builder
    processes when several creations are in flight."""

    def __init__(self, workspace: Workspace, processes: int | None = None) -> None:
        self.workspace = workspace
        self.processes = default_processes() if processes is None else processes
        self._pool: ProcessPoolExecutor | None = None
        self._in_flight = 0

    async def build(self, state: State, author: repo.Author, message: str) -> Path:
        """The staging folder holding ``state`` as a new repository (see the module docstring).

        If the caller is cancelled while the repository is being built, the folder is removed
        once it is done: nothing half-created stays behind."""
        self._in_flight += 1
        claim = _Claim()
        try:
            if self.processes and self._in_flight > 1:
                try:
                    return await self._in_process(state, author, message, claim)
                except BrokenProcessPool:
                    # A builder died (killed, out of memory): start afresh next time; build this
                    # one here. Its half-made folder, if any, stays in .staging, out of sight.
                    log.warning("builder_pool_broken: building in this process")
                    self._pool = None

            def in_thread() -> Path:
                path = self.workspace.build(state, author, message)
                claim.built(path)
                return path

            return await asyncio.to_thread(in_thread)
        except asyncio.CancelledError:
            claim.abandon()
            raise
        finally:
            self._in_flight -= 1

    async def _in_process(self, state: State, author: repo.Author, message: str, claim: _Claim) -> Path:
        pool = self._pool or self._start()
        config = self.workspace.skeleton().config
        job = pool.submit(_build, str(self.workspace.staging), state, author, message, config)

        def done(job: Future[str]) -> None:  # in the pool's own thread
            if not job.cancelled() and job.exception() is None:
                claim.built(Path(job.result()))

        job.add_done_callback(done)
        built: str = await asyncio.wrap_future(job)
        return Path(built)

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server process runs threads (Granian, Dramatiq, the watcher).
        self._pool = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_builder_started,  # a builder that outlived its server would hold its queue
            initargs=(os.getpid(),),
        )
        log.info("builder_pool_started processes=%d", self.processes)
        return self._pool

    def close(self) -> None:
        """Stop the builder processes (server shutdown); a creation still waiting is cancelled."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
