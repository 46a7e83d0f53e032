"""The worker secret and the per-task upload tokens derived from it (tasks/outputs.py)."""

from __future__ import annotations

import stat
from pathlib import Path

from tasks.outputs import token_ok, upload_token, worker_secret


def test_the_secret_is_made_once_owner_only_and_shared_by_every_reader(tmp_path: Path) -> None:
    first = worker_secret(tmp_path / "data", None)
    assert len(first) == 64
    path = tmp_path / "data" / "worker.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert worker_secret(tmp_path / "data", None) == first  # a worker on the same machine reads it
    assert (
        worker_secret(tmp_path / "data", "configured-elsewhere-0123456789")
        == "configured-elsewhere-0123456789"
    )
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["worker.secret"]  # no temporary file left


def test_an_upload_token_is_good_for_its_own_task_only() -> None:
    token = upload_token("s" * 32, "task-a")
    assert token_ok("s" * 32, "task-a", token)
    assert not token_ok("s" * 32, "task-b", token)
    assert not token_ok("t" * 32, "task-a", token)
    assert "s" * 32 not in token
