"""The read cache answers from memory only while the index is unchanged: a commit from anywhere (this
connection, another thread's, another process) is seen by the next answer.

A real SQLite index file with the studio's migrations (tests/unit/conftest.py); the other process is a
real one.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sync.db import Index
from sync.readcache import ReadCache


@pytest.fixture
def index(index: Index) -> Index:
    """The shared notes index (tests/unit/conftest.py) with one note in it."""
    with index.transaction() as db:
        db.execute("INSERT INTO notes(text) VALUES ('first')")
    return index


class Reader:
    """What a route does: read the notes; counts how often it really reads."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.reads = 0

    def __call__(self) -> list[str]:
        self.reads += 1
        return [row[0] for row in self.index.db.execute("SELECT text FROM notes ORDER BY id")]


def other_process_writes(path: Path, text: str) -> None:
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute('INSERT INTO notes(text) VALUES (?)', [sys.argv[2]]); c.commit()"
    )
    subprocess.run([sys.executable, "-c", script, str(path), text], check=True, timeout=30)


def test_an_answer_is_made_once_while_the_index_is_unchanged(index: Index) -> None:
    cache, read = ReadCache(index), Reader(index)
    answers = {cache.answer("notes", read) for _ in range(20)}
    assert answers == {b'["first"]'}
    assert read.reads == 1
    assert cache.answer("other key", read) == b'["first"]'
    assert read.reads == 2


def test_a_commit_by_another_process_is_seen_by_the_next_answer(index: Index) -> None:
    cache, read = ReadCache(index), Reader(index)
    assert json.loads(cache.answer("notes", read)) == ["first"]
    other_process_writes(index.path, "from elsewhere")
    assert json.loads(cache.answer("notes", read)) == ["first", "from elsewhere"]


def test_a_commit_from_another_thread_is_seen_by_the_next_answer(index: Index) -> None:
    cache, read = ReadCache(index), Reader(index)
    cache.answer("notes", read)

    def write() -> None:  # this thread's own connection
        with index.transaction() as db:
            db.execute("INSERT INTO notes(text) VALUES ('from a thread')")

    asyncio.run(asyncio.to_thread(write))
    assert json.loads(cache.answer("notes", read)) == ["first", "from a thread"]


def test_a_write_on_the_same_connection_is_seen_at_once(index: Index) -> None:
    cache, read = ReadCache(index), Reader(index)
    cache.answer("notes", read)
    with index.transaction() as db:  # the connection the cache reads through
        db.execute("UPDATE notes SET text = 'renamed'")
    assert json.loads(cache.answer("notes", read)) == ["renamed"]


def test_on_the_event_loop_the_index_is_asked_once_a_turn_and_a_commit_is_seen_the_turn_after(
    index: Index,
) -> None:
    cache, read = ReadCache(index), Reader(index)
    asked: list[str] = []
    index.db.conn.set_trace_callback(lambda sql: asked.append(sql) if "data_version" in sql else None)

    async def scenario() -> list[Any]:
        seen = [cache.answer("notes", read) for _ in range(50)]  # one turn: fifty requests
        assert len(asked) == 1
        assert read.reads == 1
        other_process_writes(index.path, "between turns")
        await asyncio.sleep(0)  # the next turn
        seen.append(cache.answer("notes", read))
        assert len(asked) == 2
        return [json.loads(s) for s in seen]

    seen = asyncio.run(scenario())
    assert seen[0] == ["first"]
    assert seen[-1] == ["first", "between turns"]
    assert read.reads == 2


def test_a_failed_answer_is_not_kept(index: Index) -> None:
    cache, calls = ReadCache(index), []

    def failing() -> Any:
        calls.append(1)
        raise LookupError("no such project")

    for _ in range(2):
        with pytest.raises(LookupError):
            cache.answer("missing", failing)
    assert len(calls) == 2


def test_answers_too_big_or_too_many_are_not_kept(index: Index) -> None:
    cache, read = ReadCache(index, max_bytes=8), Reader(index)
    with index.transaction() as db:
        db.execute("UPDATE notes SET text = 'a longer note'")
    cache.answer("big", read)
    cache.answer("big", read)
    assert read.reads == 2  # 17 bytes: made again each time

    small = ReadCache(index, max_total=2 * 17)  # room for two answers of 17 bytes
    counted = Reader(index)
    for key in ("a", "b", "c", "a"):  # "a" is the oldest when "c" comes
        small.answer(key, counted)
    assert counted.reads == 4
    small.answer("c", counted)  # still held
    assert counted.reads == 4
