"""Group commit on the event loop: jobs ready together share one transaction, each undone alone.

A real SQLite index file with the studio's migrations; the jobs write through
``Index.transaction()`` as the project service does.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from typing import Any

import pytest

from sync.db import Index
from sync.indexwriter import IndexWriter


def noted(index: Index) -> list[str]:
    return [row[0] for row in index.db.execute("SELECT text FROM notes ORDER BY id")]


def note(index: Index, text: str, fail: bool = False) -> Any:
    def job() -> str:
        with index.transaction() as db:
            db.execute("INSERT INTO notes(text) VALUES (?)", [text])
            if fail:
                raise ValueError(f"{text} refused")
        return text

    return job


def test_jobs_ready_together_are_committed_in_one_transaction(index: Index) -> None:
    writer = IndexWriter(index)

    async def burst() -> list[str]:
        return await asyncio.gather(*(writer.run(note(index, f"n{i}")) for i in range(6)))

    assert asyncio.run(burst()) == [f"n{i}" for i in range(6)]
    assert writer.commits == 1
    assert noted(index) == [f"n{i}" for i in range(6)]
    # Another connection (a reader elsewhere) sees them committed.
    with sqlite3.connect(index.path) as other:
        assert other.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 6


def test_jobs_one_after_another_each_commit(index: Index) -> None:
    writer = IndexWriter(index)

    async def one_by_one() -> None:
        for i in range(3):
            await writer.run(note(index, f"n{i}"))

    asyncio.run(one_by_one())
    assert writer.commits == 3
    assert noted(index) == ["n0", "n1", "n2"]


def test_a_failing_job_is_undone_alone_and_its_caller_gets_its_error(index: Index) -> None:
    writer = IndexWriter(index)

    async def burst() -> list[Any]:
        return await asyncio.gather(
            writer.run(note(index, "kept before")),
            writer.run(note(index, "doomed", fail=True)),
            writer.run(note(index, "kept before")),  # the unique text: a real SQLite error
            writer.run(note(index, "kept after")),
            return_exceptions=True,
        )

    first, doomed, duplicate, last = asyncio.run(burst())
    assert (first, last) == ("kept before", "kept after")
    assert isinstance(doomed, ValueError)
    assert str(doomed) == "doomed refused"
    assert isinstance(duplicate, sqlite3.IntegrityError)
    assert writer.commits == 1
    assert noted(index) == ["kept before", "kept after"]


def test_a_commit_that_fails_undoes_every_job_of_its_batch(index: Index) -> None:
    # A deferred foreign key is checked only at COMMIT: one job breaking it fails the commit.
    with index.transaction() as db:
        db.execute("CREATE TABLE links(note TEXT REFERENCES notes(text) DEFERRABLE INITIALLY DEFERRED)")
    writer = IndexWriter(index)
    undone: list[str] = []

    def dangling() -> str:
        with index.transaction() as db:
            db.execute("INSERT INTO links(note) VALUES ('nowhere')")
        return "dangling"

    async def burst() -> list[Any]:
        return await asyncio.gather(
            writer.run(note(index, "a"), undo=undone.append),
            writer.run(dangling, undo=undone.append),
            writer.run(note(index, "b"), undo=undone.append),
            return_exceptions=True,
        )

    results = asyncio.run(burst())
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert sorted(undone) == ["a", "b", "dangling"]
    assert writer.commits == 0
    assert noted(index) == []
    assert index.db.execute("SELECT COUNT(*) FROM links").fetchone()[0] == 0
    assert not index.db.conn.in_transaction

    async def later() -> str:
        return await writer.run(note(index, "later"))

    assert asyncio.run(later()) == "later"  # the writer goes on afterwards
    assert noted(index) == ["later"]


def test_inside_a_batch_a_transaction_is_a_savepoint_and_nowhere_else(index: Index) -> None:
    def refused() -> None:
        with index.transaction() as inner:
            inner.execute("INSERT INTO notes(text) VALUES ('inner')")
            raise ValueError("inner refused")

    with index.batch() as db:
        db.execute("INSERT INTO notes(text) VALUES ('outer')")
        with pytest.raises(ValueError, match="inner refused"):
            refused()
        with index.transaction() as inner:
            inner.execute("INSERT INTO notes(text) VALUES ('second inner')")
        db.execute("COMMIT")
    assert noted(index) == ["outer", "second inner"]
    # A transaction left open by mistake is an error for the next one, not a silent savepoint
    # whose writes would wait for a COMMIT that never comes.
    index.db.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="within a transaction"), index.transaction():
        pass
    index.db.execute("ROLLBACK")


def test_a_batch_that_ends_by_an_exception_is_rolled_back(index: Index) -> None:
    def interrupted() -> None:
        with index.batch() as db:
            db.execute("INSERT INTO notes(text) VALUES ('half')")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert not index.db.conn.in_transaction
    assert noted(index) == []
    with index.transaction() as db:  # and the next transaction is a plain one again
        db.execute("INSERT INTO notes(text) VALUES ('whole')")
    assert noted(index) == ["whole"]


def test_a_caller_that_goes_away_leaves_its_job_to_finish_quietly(index: Index) -> None:
    writer = IndexWriter(index)
    complaints: list[dict[str, Any]] = []

    async def give_up() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: complaints.append(context))
        kept = asyncio.ensure_future(writer.run(note(index, "kept")))
        doomed = asyncio.ensure_future(writer.run(note(index, "doomed", fail=True)))
        await asyncio.sleep(0)  # both handed over
        kept.cancel()
        doomed.cancel()
        await asyncio.sleep(0.05)  # the batch runs
        gc.collect()

    asyncio.run(give_up())
    assert noted(index) == ["kept"]
    assert writer.commits == 1
    assert complaints == []
