"""Fixtures the unit tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.db import Index


@pytest.fixture
def index(tmp_path: Path) -> Index:
    """A real index file with the studio's migrations and a ``notes`` table to write to."""
    index = Index(tmp_path / "studio.db")
    index.migrate()
    with index.transaction() as db:
        db.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT UNIQUE)")
    return index
