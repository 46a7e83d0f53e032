"""The studio as a person runs it: `studio serve` on Granian, and the `studio` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, LiveServer, git


def studio(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_DATA_DIR": str(tmp / "data"), "WORKSPACE_ROOT": str(tmp / "workspace")}
    env.pop("STUDIO_BROKER_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_granian_serves_the_api_and_the_app(live_server: LiveServer) -> None:
    health = httpx.get(f"{live_server.url}/api/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    page = httpx.get(f"{live_server.url}/")
    assert page.status_code == 200
    assert "<html" in page.text.lower()
    assert "content-security-policy" in page.headers


def test_logs_are_json_lines_with_request_ids_and_no_tokens(live_server: LiveServer) -> None:
    guest = httpx.post(f"{live_server.url}/api/auth/guest").json()
    token = guest["token"]
    r = httpx.get(
        f"{live_server.url}/api/projects",
        params={"token": token, "q": "x"},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-logs-0001"},
    )
    assert r.status_code == 200
    httpx.post(
        f"{live_server.url}/api/auth/login", json={"email": "x@example.org", "password": "hunter2hunter2"}
    )
    log = (live_server.data_dir.parent / "server.log").read_text()
    assert token not in log
    assert "hunter2hunter2" not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    mine = [entry for entry in lines if entry.get("request_id") == "trace-logs-0001"]
    assert mine
    assert mine[0]["query"] == "token=[redacted]&q=x"
    assert mine[0]["status"] == 200
    assert all("timestamp" in entry and "level" in entry for entry in lines)


def test_cli_new_project_prints_its_id_and_path(tmp_path: Path) -> None:
    out = studio(tmp_path, "new-project", "Night Shift", "--template", "save-the-cat")
    assert out.returncode == 0, out.stderr
    project_id, path = out.stdout.split()
    assert Path(path) == tmp_path / "workspace" / "Projects" / "Night_Shift"
    assert json.loads((Path(path) / "project.json").read_text())["uuid"] == project_id
    assert git(Path(path), "status", "--porcelain") == ""
    bad = studio(tmp_path, "new-project", "...")
    assert bad.returncode == 2
    assert "only dots" in bad.stderr
    unknown = studio(tmp_path, "new-project", "X", "--template", "seven-act")
    assert unknown.returncode == 2
    assert "seven-act" in unknown.stderr


def test_reindex_rebuilds_the_index_from_the_repositories(tmp_path: Path) -> None:
    ids = [studio(tmp_path, "new-project", name).stdout.split()[0] for name in ("One", "Two")]
    (tmp_path / "data" / "studio.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / "data" / f"studio.db{suffix}").unlink(missing_ok=True)
    out = studio(tmp_path, "reindex")
    assert out.returncode == 0, out.stderr
    assert "2 added" in out.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "studio.db") as db:
        rows = db.execute("SELECT id, name, path FROM projects ORDER BY name").fetchall()
    assert rows == [(ids[0], "One", "Projects/One"), (ids[1], "Two", "Projects/Two")]


def test_worker_without_a_broker_says_what_to_set(tmp_path: Path) -> None:
    out = studio(tmp_path, "worker")
    assert out.returncode == 2
    assert "STUDIO_BROKER_URL" in out.stderr


def test_worker_elsewhere_without_the_secret_says_what_to_set_and_writes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "STUDIO_DATA_DIR": str(tmp_path / "data"), "WORKSPACE_ROOT": str(tmp_path / "workspace"),
           "STUDIO_BROKER_URL": "redis://127.0.0.1:1/0", "STUDIO_SERVER_URL": "http://studio.invalid:8000"}  # fmt: skip
    env.pop("STUDIO_WORKER_SECRET", None)
    out = subprocess.run([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2
    assert "STUDIO_WORKER_SECRET is not set" in out.stderr
    assert not (tmp_path / "data").exists()  # a worker keeps nothing on disk
    assert not (tmp_path / "workspace").exists()


def test_bad_settings_stop_the_server_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    env = {**os.environ, "WORKSPACE_ROOT": str(tmp_path / "afile"), "STUDIO_DATA_DIR": str(tmp_path / "d")}
    out = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", "1"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2
    assert "WORKSPACE_ROOT" in out.stderr
    assert "is a file" in out.stderr
    assert "Traceback" not in out.stderr
