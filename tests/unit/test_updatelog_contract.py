"""One contract suite for every UpdateLog implementation."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.updatelog import MemoryUpdateLog, SQLiteUpdateLog, UpdateLog


@pytest.fixture(params=["memory", "sqlite"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> UpdateLog:
    return MemoryUpdateLog() if request.param == "memory" else SQLiteUpdateLog(tmp_path / "sync.db")


def test_appends_are_numbered_per_project_and_read_back_in_order(log: UpdateLog) -> None:
    assert [log.append("p1", b"a", "u1"), log.append("p1", b"b", "u2"), log.append("p2", b"c", "u1")] == [
        1,
        2,
        1,
    ]
    loaded = log.load("p1")
    assert loaded.snapshot is None
    assert [(e.seq, e.data, e.user_id) for e in loaded.updates] == [(1, b"a", "u1"), (2, b"b", "u2")]
    assert log.last_seq("p1") == 2
    assert log.last_seq("nobody") == 0


def test_r1_a_project_is_seeded_once(log: UpdateLog) -> None:
    assert log.seed("p", b"seed", "filesystem") == 1
    assert log.seed("p", b"another seed", "filesystem") is None  # a second server process, late
    assert [e.data for e in log.load("p").updates] == [b"seed"]
    log.append("q", b"edit", "u")
    assert log.seed("q", b"seed", "filesystem") is None


def test_compaction_keeps_later_updates_and_numbering(log: UpdateLog) -> None:
    for i in range(5):
        log.append("p", bytes([i]), "u")
    log.compact("p", b"SNAP", 3)
    loaded = log.load("p")
    assert (loaded.snapshot, loaded.snapshot_seq) == (b"SNAP", 3)
    assert [e.seq for e in loaded.updates] == [4, 5]
    assert log.append("p", b"x", "u") == 6
    assert [e.seq for e in log.since("p", 4)] == [5, 6]


def test_marks_remember_positions(log: UpdateLog) -> None:
    assert log.marker("p", "git") == 0
    log.mark("p", "git", 7)
    log.mark("p", "git", 9)
    assert log.marker("p", "git") == 9
    assert log.marker("q", "git") == 0


def test_sqlite_log_survives_reopening(tmp_path: Path) -> None:
    first = SQLiteUpdateLog(tmp_path / "sync.db")
    first.append("p", b"kept", "u")
    again = SQLiteUpdateLog(tmp_path / "sync.db")
    assert [e.data for e in again.load("p").updates] == [b"kept"]
    assert again.append("p", b"next", "u") == 2
