"""Encoded answers to the busiest reads (a person's project list, one project), kept for as long as
the index has not changed.

Every gallery that opens or refreshes asks for the same list, and every client that opens a
project asks for the project again; between two edits the answer is the same bytes. Under load a
read that reaches SQLite costs the event loop far more than the query itself: the ``sqlite3``
module lets go of the GIL for each step, and Granian's thread, which needs the GIL for every
request it hands over, takes it each time (a project list served from here ran at about twice the
requests a second of one read from SQLite, in the benchmark of ``scripts/bench/api.py``).

An answer is good while the index is at the same *generation*: ``PRAGMA data_version`` (which
changes when any other connection, in this process or another, commits) and the connection's own
``total_changes`` (its own writes). On the event loop the pragma is asked at the first answer of
a turn and holds until the loop reaches the callback it queued then: whatever runs before that
callback was queued before the pragma was asked, so it was caused (a request received, a write
awaited) before it, and a commit that finished earlier is seen. A turn that answers fifty lists
reaches SQLite once. Off the loop the pragma is asked every time.

>>> reads = ReadCache(index)  # doctest: +SKIP
>>> body = reads.answer(("list", user_id), lambda: search(user_id))  # JSON bytes  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Hashable
from typing import Any

import msgspec

from sync.db import Index

_encode = msgspec.json.Encoder().encode


class ReadCache:
    """Answers by key, as JSON bytes, dropped all at once when the index changes."""

    def __init__(self, index: Index, max_total: int = 32 * 1024**2, max_bytes: int = 256 * 1024) -> None:
        self.index = index
        self.max_total = max_total  # bytes held in all; the oldest answers go first
        self.max_bytes = max_bytes  # a bigger answer (a page of hundreds of projects) is not kept
        self._entries: dict[Hashable, bytes] = {}
        self._total = 0
        self._generation: tuple[int, int, int] | None = None
        self._turn: tuple[sqlite3.Connection, int] | None = None  # this loop turn's data_version

    def answer(self, key: Hashable, make: Callable[[], Any]) -> bytes:
        """The JSON encoding of ``make()``, from the cache when the index is unchanged since it was
        made. An exception from ``make`` is raised and nothing is kept."""
        generation = self.generation()
        if generation != self._generation:
            self._entries.clear()
            self._total = 0
            self._generation = generation
        else:
            body = self._entries.get(key)
            if body is not None:
                return body
        body = _encode(make())
        if len(body) <= self.max_bytes:
            while self._entries and self._total + len(body) > self.max_total:
                self._total -= len(self._entries.pop(next(iter(self._entries))))  # the oldest
            self._entries[key] = body
            self._total += len(body)
        return body

    def generation(self) -> tuple[int, int, int]:
        """Where the calling thread's connection stands: (connection, data_version, total_changes)."""
        conn: sqlite3.Connection = self.index.db.conn
        turn = self._turn
        if turn is not None and turn[0] is conn:
            version = turn[1]
        else:
            version = int(conn.execute("PRAGMA data_version").fetchone()[0])
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass  # not on an event loop: no turn to share it with
            else:
                self._turn = (conn, version)
                loop.call_soon(self._end_turn)
        return (id(conn), version, conn.total_changes)

    def _end_turn(self) -> None:
        self._turn = None
