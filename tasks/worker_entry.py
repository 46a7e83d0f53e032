"""What ``studio worker`` hands to Dramatiq: the configured broker, then the actors.

These workers read the task rows and the project files they work from (a storyboard's story,
an export's repository) in the server's data folder and workspace (one machine, or a shared
volume); their events reach the servers over Redis pub/sub, and their results go back through
the server's upload route (``POST STUDIO_SERVER_URL/api/tasks/{id}/outputs``, see
``tasks.outputs``), so nothing they make is written into a project by the worker itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sync.db import Index
from sync.workspace import Workspace
from tasks import bench
from tasks.broker import install, redis_publisher
from tasks.failures import RetryPolicy
from tasks.outputs import http_delivery, worker_secret
from tasks.runner import Runtime, make_actors, turn_sender
from tasks.store import TaskStore
from tasks.webhooks import Webhooks

broker = install(os.environ.get("STUDIO_BROKER_URL") or None)  # first, before any actor exists
_data_dir = Path(os.environ.get("STUDIO_DATA_DIR", "data/runtime")).resolve()
_index = Index(_data_dir / "studio.db")
_workspace = Workspace(Path(os.environ.get("WORKSPACE_ROOT", "data/runtime/workspace")))


def _project_root(project_id: str) -> Path | None:
    row = _index.db.execute(
        "SELECT path FROM projects WHERE id = ? AND deleted_at IS NULL", [project_id]
    ).fetchone()
    return _workspace.path_of(row[0]) if row else None


def _no_events(event: dict[str, Any]) -> None:
    return None


if os.environ.get("STUDIO_BENCH_TASKS", "").lower() in ("1", "true", "yes", "on"):
    bench.enable()


def server_url() -> str:
    """``STUDIO_SERVER_URL``, or the studio on this machine at ``HOST``/``PORT``."""
    configured = os.environ.get("STUDIO_SERVER_URL", "").strip()
    if configured:
        return configured
    host = os.environ.get("HOST", "127.0.0.1")
    return f"http://{'127.0.0.1' if host in ('', '0.0.0.0', '::') else host}:{os.environ.get('PORT', '8000')}"  # noqa: S104


_url = os.environ.get("STUDIO_BROKER_URL") or None
_relay = redis_publisher(_url) if _url else _no_events
# Webhook deliveries run here too (cpu queue); the events of the tasks run here are fired from here.
webhooks = Webhooks(_index, broker)


def _publish(event: dict[str, Any]) -> None:
    _relay(event)
    webhooks.fire(event)


_runtime = Runtime(
    TaskStore(_index),
    _project_root,
    Path(os.environ.get("STUDIO_MODELS_DIR", "data/runtime/models")).resolve(),
    _publish,
    http_delivery(server_url(), worker_secret(_data_dir, os.environ.get("STUDIO_WORKER_SECRET"))),
    policy=RetryPolicy.from_env(),
)
actors = make_actors(broker, lambda: _runtime)
_runtime.send_turn = turn_sender(actors)
