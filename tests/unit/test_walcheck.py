"""WAL checkpoints run in a thread of their own, never inside a commit of the server's threads."""

from __future__ import annotations

import time
from pathlib import Path

from sync.db import Index
from sync.updatelog import SQLiteUpdateLog


def write_pages(index: Index, n: int = 1500) -> None:
    """Commit about ``n`` pages (4 KiB each) of new rows in one transaction."""
    with index.transaction() as db:
        for i in range(n):
            db.execute(
                "INSERT INTO audit(time, action, detail) VALUES ('t', 'bulk', ?)", [f"{i:05d}" + "x" * 4000]
            )


def db_size(path: Path) -> int:
    return path.stat().st_size


def test_a_commit_checkpoints_by_itself_by_default(tmp_path: Path) -> None:
    # The contrast for the test below: past 1,000 pages SQLite checkpoints inside the commit.
    index = Index(tmp_path / "studio.db")
    index.migrate()
    before = db_size(index.path)
    write_pages(index)
    assert db_size(index.path) > before + 4_000_000


def test_commits_leave_checkpoints_to_the_background_thread(tmp_path: Path) -> None:
    index = Index(tmp_path / "studio.db")
    index.migrate()
    checkpointer = index.checkpoint_in_background(interval_s=3600)  # not on its own during the test
    try:
        before = db_size(index.path)
        write_pages(index)
        assert db_size(index.path) == before, "the committing thread checkpointed"
    finally:
        checkpointer.stop()  # one last checkpoint
    assert db_size(index.path) > before + 4_000_000
    assert checkpointer.done == 1


def test_the_background_thread_checkpoints_every_interval(tmp_path: Path) -> None:
    index = Index(tmp_path / "studio.db")
    index.migrate()
    checkpointer = index.checkpoint_in_background(interval_s=0.05)
    try:
        before = db_size(index.path)
        write_pages(index)
        deadline = time.monotonic() + 10
        while db_size(index.path) <= before + 4_000_000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert db_size(index.path) > before + 4_000_000
    finally:
        checkpointer.stop()


def test_the_update_log_hands_its_checkpoints_over_too(tmp_path: Path) -> None:
    log = SQLiteUpdateLog(tmp_path / "sync.db")
    checkpointer = log.checkpoint_in_background(interval_s=3600)
    try:
        before = db_size(log.path)
        for i in range(300):  # 300 updates of 16 KiB: about 1,200 pages, one commit each
            log.append("p1", bytes([i % 256]) * 16384, "u1")
        assert db_size(log.path) == before, "an append checkpointed"
    finally:
        checkpointer.stop()
    assert db_size(log.path) > before + 4_000_000


def test_a_log_grown_past_the_limit_is_emptied(tmp_path: Path) -> None:
    from sync.walcheck import Checkpointer

    index = Index(tmp_path / "studio.db")
    index.migrate()
    index.checkpoint_in_background(interval_s=3600).stop()  # hand the checkpoints over, then take them here
    write_pages(index)
    wal = index.path.with_name("studio.db-wal")
    assert wal.stat().st_size > 4_000_000
    # The index's connection stays open, outside any transaction: nothing holds the log.
    Checkpointer(index.path, interval_s=3600, truncate_over=1_000_000).start().stop()
    assert wal.stat().st_size == 0
