"""Rooms by project: loaded on first use, written to Git after a quiet moment, unloaded when idle.

Loading rebuilds a document from the update log (latest snapshot plus later updates); a project
that has no log yet is bootstrapped from the files of its Git repository. After every accepted
update the room is marked dirty; the materializer writes it to Git once edits pause for
``quiet_s`` (and at least every ``max_wait_s`` while editing goes on). Rooms nobody has used for
``idle_s`` are compacted and dropped, so memory stays bounded with many projects.

Several server processes may hold a room of the same project (scale-out, ``sync/SPEC.md`` S1):
the shared update log is the truth. A room catches up with what the others appended whenever
it is used (:meth:`Rooms.get`), before it is written to Git, when told so (:meth:`Rooms.catch_up`,
rung by the others through Redis: ``on_append``), and every few seconds while it has peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycrdt import Doc

from sync.docmodel import doc_to_state, state_to_doc
from sync.materializer import Materializer
from sync.model import files_to_state
from sync.room import Access, Conflict, Room
from sync.updatelog import UpdateLog

log = logging.getLogger("sync.rooms")
COMPACT_AFTER = 500
FILESYSTEM = "filesystem"


@dataclass
class Dirty:
    first: float
    last: float
    task: asyncio.Task[None] | None = None


class Rooms:
    """All live rooms of one server process."""

    def __init__(
        self,
        updates: UpdateLog,
        project_root: Callable[[str], Path | None],
        materializer: Materializer,
        *,
        on_conflict: Callable[[str, Conflict], None] = lambda project_id, conflict: None,
        quiet_s: float = 1.0,
        max_wait_s: float = 5.0,
        idle_s: float = 60.0,
    ) -> None:
        self.updates = updates
        self.project_root = project_root
        self.materializer = materializer
        self.on_conflict = on_conflict
        self.quiet_s, self.max_wait_s, self.idle_s = quiet_s, max_wait_s, idle_s
        self.rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._dirty: dict[str, Dirty] = {}
        self._sweeper: asyncio.Task[None] | None = None
        # Told after this process appended to a project's log (the other processes catch up).
        self.on_append: Callable[[str], None] = lambda project_id: None
        # Told of the awareness changes of this process's peers, and of a room loaded here (so
        # the other processes send the awareness of theirs): S2.
        self.on_awareness: Callable[[str, bytes], None] = lambda project_id, payload: None
        self.on_loaded: Callable[[str], None] = lambda project_id: None
        # Told when this process trashes a project (the others close their peers of it).
        self.on_evict: Callable[[str], None] = lambda project_id: None
        # Asked what the given (user id, session) pairs may do in a project now (P4); None: the
        # rooms never re-check. Called on the event loop: it must be quick.
        self.access: Callable[[str, set[tuple[str, str]]], dict[tuple[str, str], Access]] | None = None

    async def get(self, project_id: str) -> Room:
        """The room of ``project_id``, loading it if needed (raises KeyError for unknown projects)."""
        room = self.rooms.get(project_id)
        if room is not None:
            room.catch_up()
            return room
        lock = self._loading.setdefault(project_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(project_id)
            if room is None:
                room = await asyncio.to_thread(self._load, project_id)
                self.rooms[project_id] = room
                room.on_awareness = lambda payload: self.on_awareness(project_id, payload)
                self.on_loaded(project_id)
                if self.updates.marker(project_id, "git") < self.updates.last_seq(project_id):
                    # The log holds edits the repository lacks (the server stopped before it
                    # committed them): commit them now rather than at the next edit.
                    self._touch(project_id)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return room

    def _load(self, project_id: str) -> Room:
        loaded = self.updates.load(project_id)
        seeded: tuple[Doc[Any], int] | None = None
        if loaded.empty:
            root = self.project_root(project_id)
            if root is None:
                raise KeyError(project_id)
            doc = state_to_doc(files_to_state(root))
            seq = self.updates.seed(project_id, doc.get_update(), FILESYSTEM)
            if seq is None:  # another server process seeded it meanwhile: its seed is the one (S1)
                loaded = self.updates.load(project_id)
            else:
                self.updates.mark(project_id, "git", seq)  # the repository already holds this state
                seeded = (doc, seq)
        if seeded is not None:
            doc, seen = seeded
        else:
            doc = loaded.replay()
            seen = loaded.updates[-1].seq if loaded.updates else loaded.snapshot_seq
        room = Room(
            project_id,
            doc,
            self.updates,
            lambda user_id: self._accepted(project_id),
            lambda conflict: self.on_conflict(project_id, conflict),
        )
        room.seen_seq = seen
        return room

    def _accepted(self, project_id: str) -> None:
        self._touch(project_id)
        self.on_append(project_id)

    def take_awareness(self, project_id: str, payload: bytes) -> None:
        """S2: awareness of another process's peers, for a room loaded here."""
        room = self.rooms.get(project_id)
        if room is not None:
            room.take_awareness(payload)

    def share_awareness(self, project_id: str) -> None:
        """S2: another process loaded the project: tell it who is here."""
        room = self.rooms.get(project_id)
        payload = room.local_awareness() if room is not None else None
        if payload is not None:
            self.on_awareness(project_id, payload)

    def catch_up(self, project_id: str) -> None:
        """S1: another process appended to ``project_id``'s log; a loaded room takes it in."""
        room = self.rooms.get(project_id)
        if room is not None:
            room.catch_up()

    # -- materializing ----------------------------------------------------------------------------

    def _touch(self, project_id: str) -> None:
        now = time.monotonic()
        dirty = self._dirty.get(project_id)
        if dirty is None:
            dirty = self._dirty[project_id] = Dirty(first=now, last=now)
        dirty.last = now
        if dirty.task is None:
            dirty.task = asyncio.get_running_loop().create_task(self._debounce(project_id, dirty))

    async def _debounce(self, project_id: str, dirty: Dirty) -> None:
        while True:
            due = min(dirty.last + self.quiet_s, dirty.first + self.max_wait_s)
            wait = due - time.monotonic()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self._dirty.pop(project_id, None)
        await self.flush(project_id)

    async def flush(self, project_id: str, note: str | None = None) -> str | None:
        """Write the room's doc to its repository now; return the new commit sha, if any.

        ``note`` leads the commit message (e.g. "Restore version 1a2b3c4")."""
        room = self.rooms.get(project_id)
        root = self.project_root(project_id)
        if room is None or root is None:
            return None
        upto = self.updates.last_seq(project_id)
        room.catch_up()  # the commit holds every update up to `upto`, whichever process took it
        state = doc_to_state(room.doc)
        since = self.updates.marker(project_id, "git")
        users = self.updates.contributors(project_id, since)
        try:
            sha = await asyncio.to_thread(self.materializer.write, project_id, root, state, users, note)
        except Exception:
            log.exception("materialize_failed project=%s", project_id)
            return None
        if upto > self.updates.marker(project_id, "git"):  # another process may have gone further
            self.updates.mark(project_id, "git", upto)
        if upto - self.updates.snapshot_seq(project_id) > COMPACT_AFTER:
            self.updates.compact(project_id, room.doc.get_update(), upto)
        return sha

    async def flush_all(self) -> None:
        for project_id in list(self._dirty):
            dirty = self._dirty.pop(project_id)
            if dirty.task is not None:
                dirty.task.cancel()
            await self.flush(project_id)

    async def evict(
        self, project_id: str, code: int = 4404, reason: str = "the project was moved to the trash"
    ) -> None:
        """Commit what the room holds, close its peers with ``code`` and forget it (a trashed project);
        the other server processes close theirs (``on_evict``, :meth:`drop`)."""
        self.on_evict(project_id)
        if project_id not in self.rooms and self.updates.marker(project_id, "git") < self.updates.last_seq(
            project_id
        ):
            # Edits another server process took are in the log, not yet in Git: commit them here.
            with contextlib.suppress(KeyError):
                await self.get(project_id)
        await self.drop(project_id, code, reason, commit=True)

    async def drop(
        self, project_id: str, code: int = 4404, reason: str = "the project was moved to the trash",
        *, commit: bool = False,
    ) -> None:  # fmt: skip
        """Close the room's peers with ``code`` and forget it; with ``commit``, commit what it holds
        first. Without: another server process trashed the project, after committing the log (its
        room caught up before), and may be moving its folder now: nothing is written here (R4, S1)."""
        dirty = self._dirty.pop(project_id, None)
        if dirty is not None and dirty.task is not None:
            dirty.task.cancel()
        room = self.rooms.get(project_id)
        if room is None:
            return
        if commit:
            await self.flush(project_id)
        await room.close_all(code, reason)
        self.rooms.pop(project_id, None)
        self._loading.pop(project_id, None)

    def reauthorise(self, project_id: str | None = None) -> int:
        """Check again what the peers of ``project_id`` (or of every room) may do, and close or
        change those whose access changed (P4): called at once after a change made in this process
        (a member removed, a sign-out) and by the sweep every few seconds, which catches changes
        made through other server processes. Returns how many peers were closed."""
        if self.access is None:
            return 0
        if project_id is None:
            rooms = list(self.rooms.values())
        else:
            rooms = [self.rooms[project_id]] if project_id in self.rooms else []
        closed = 0
        for room in rooms:
            sessions = room.sessions()
            if sessions:
                closed += room.reauthorise(self.access(room.project_id, sessions))
        return closed

    # -- memory -----------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.idle_s / 2))
            now = time.monotonic()
            try:
                self.reauthorise()
            except Exception:  # the index is busy or gone: the next round tries again
                log.exception("reauthorise_failed")
            for project_id, room in list(self.rooms.items()):
                room.expire_awareness()
                if room.peers:
                    room.catch_up()  # S1 without Redis (or with a missed call): at most this late
                if not room.peers and project_id not in self._dirty and now - room.last_active > self.idle_s:
                    del self.rooms[project_id]
                    self._loading.pop(project_id, None)
                    log.info("room_unloaded project=%s", project_id)

    async def close(self) -> None:
        """Flush every dirty room and close every peer (server shutdown)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.flush_all()
        for room in list(self.rooms.values()):
            await room.close_all()
