"""The workspace on disk: first start, atomic creation, nothing ever written outside it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from app.main import create_app
from app.settings import Settings
from tests.conftest import BASE, Person, make_settings


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_first_start_creates_the_workspace_layout(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings), base_url=BASE):
        pass
    for folder in ("Library/Pipeline_Templates", "Library/Stock_Media", "Library/Branding", "Projects"):
        assert (settings.workspace_root / folder).is_dir()
    with sqlite3.connect(settings.db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 1


def test_nothing_is_ever_written_outside_the_workspace(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    settings = make_settings(
        outside, WORKSPACE_ROOT=tmp_path / "outside" / "ws", STUDIO_DATA_DIR=tmp_path / "data"
    )
    before = snapshot(tmp_path)
    with TestClient(create_app(settings), base_url=BASE) as c:
        headers = {"Authorization": f"Bearer {c.post('/api/auth/guest').json()['token']}"}
        names = ["..", "../..", "../../../escape", "..\\..\\escape", "/etc/passwd", "ws/../../x", "%2e%2e%2fx",
                 "\u2024\u2024", "．．", "~root", "NUL", ". .", "a\x00b"]  # fmt: skip  # noqa: RUF001 - look-alike dots on purpose
        for name in names:
            r = c.post("/api/projects", headers=headers, json={"name": name})
            assert r.status_code in (201, 422), (name, r.text)
            if r.status_code == 201:
                path = (settings.workspace_root / r.json()["path"]).resolve()
                assert path.parent == (settings.workspace_root / "Projects").resolve(), name
    after = snapshot(tmp_path) - before
    allowed = ("outside/ws", "data")
    assert [p for p in after if not p.startswith(allowed)] == []
    assert not list(tmp_path.rglob("escape"))


def test_a_failure_while_registering_leaves_no_folder_and_no_row(
    client: TestClient[Any], guest: Person, settings: Settings
) -> None:
    # Given the index refuses the new row (a real SQLite error, injected with a trigger)
    with sqlite3.connect(settings.db_path) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON members BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    # When a project is created
    r = client.post("/api/projects", headers=guest.headers, json={"name": "Doomed"})
    # Then the person gets a 500 problem, and neither the folder nor a row remains
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert list((settings.workspace_root / "Projects").iterdir()) == []
    assert list((settings.workspace_root / ".staging").iterdir()) == []
    with sqlite3.connect(settings.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM projects").fetchone()[0] == 0
        db.execute("DROP TRIGGER refuse")
    assert (
        client.post("/api/projects", headers=guest.headers, json={"name": "Doomed"}).json()["path"]
        == "Projects/Doomed"
    )


def test_creating_goes_on_when_the_staging_folder_was_removed(
    client: TestClient[Any], guest: Person, settings: Settings
) -> None:
    """Someone tidies the workspace while the studio runs and deletes the hidden .staging folder:
    the next creation makes it again instead of failing."""
    shutil.rmtree(settings.workspace_root / ".staging")
    r = client.post("/api/projects", headers=guest.headers, json={"name": "After Tidying"})
    assert r.status_code == 201, r.text
    assert (settings.workspace_root / r.json()["path"] / "project.json").is_file()
    assert list((settings.workspace_root / ".staging").iterdir()) == []


def test_a_workspace_that_cannot_be_written_is_a_clear_start_error(tmp_path: Path) -> None:
    import pytest

    from app.settings import SettingsError

    (tmp_path / "file").write_text("")
    with pytest.raises(SettingsError, match="WORKSPACE_ROOT"):
        create_app(make_settings(tmp_path, WORKSPACE_ROOT=tmp_path / "file"))
    if os.geteuid() != 0:  # root writes anywhere; the permission case only holds for other users
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(SettingsError, match="not writable"):
            create_app(make_settings(tmp_path, WORKSPACE_ROOT=ro / "ws"))


def test_an_index_from_before_kept_collaborators_gets_them_on_upgrade(tmp_path: Path) -> None:
    """Upgrading a studio fills in the collaborators of existing projects (migration 7), and the
    full-text index still finds them by name."""
    from sync.db import MIGRATIONS, Index

    settings = make_settings(tmp_path)
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    index = Index(settings.db_path)
    with index.transaction() as db:
        for version, migration in enumerate(MIGRATIONS[:6], start=1):
            migration(db)
            db.execute(f"PRAGMA user_version = {version}")
        now = "2026-01-01T00:00:00Z"
        for uid, name in (("u1", "Alice"), ("u2", "Bob")):
            db.execute("INSERT INTO users(id, name, created_at) VALUES (?, ?, ?)", [uid, name, now])
        db.execute(
            "INSERT INTO projects(id, name, template, path, created_at, updated_at) "
            "VALUES ('p1', 'Old Reel', 'blank', 'Projects/Old_Reel', ?, ?)",
            [now, now],
        )
        db.execute("INSERT INTO members VALUES ('p1', 'u2', 'editor', '2026-01-02T00:00:00Z')")
        db.execute("INSERT INTO members VALUES ('p1', 'u1', 'owner', '2026-01-03T00:00:00Z')")
    assert index.migrate() == len(MIGRATIONS)
    row = index.db.execute("SELECT collaborators FROM projects WHERE id = 'p1'").fetchone()
    assert json.loads(row[0]) == [
        {"id": "u1", "name": "Alice", "role": "owner"},
        {"id": "u2", "name": "Bob", "role": "editor"},
    ]
    index.db.execute("UPDATE projects SET name = 'New Reel', updated_at = ? WHERE id = 'p1'", ["2026-02-01"])
    found = index.db.execute("SELECT rowid FROM projects_fts WHERE projects_fts MATCH 'new'").fetchall()
    assert len(found) == 1
    assert index.db.execute("SELECT rowid FROM projects_fts WHERE projects_fts MATCH 'old'").fetchall() == []
