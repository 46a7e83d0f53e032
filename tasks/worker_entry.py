"""What ``studio worker`` hands to Dramatiq: the configured broker, then the actors.

These workers need no disk of the server's: they take their turns from the broker
(``STUDIO_BROKER_URL``), and everything they read or write about tasks and projects — claiming a
task, progress, previews, cancellation, how it ended, the project files it works from, the
webhook log — goes through the server's worker API at ``STUDIO_SERVER_URL`` (``tasks.remote``),
authenticated with ``STUDIO_WORKER_SECRET``. Their results go back through the upload route
(``POST /api/tasks/{id}/outputs``, ``tasks.outputs``). So they run the same on this machine or
on a GPU machine elsewhere.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tasks import bench
from tasks.broker import install
from tasks.failures import RetryPolicy
from tasks.outputs import http_delivery
from tasks.project_files import ProjectFiles
from tasks.remote import RemoteLedger, RemoteProject, RemoteWebhookBook, WorkerClient, WorkerRefused
from tasks.runner import Runtime, make_actors
from tasks.webhooks import delivery_actor

log = logging.getLogger("tasks.worker")
broker = install(os.environ.get("STUDIO_BROKER_URL") or None)  # first, before any actor exists

if os.environ.get("STUDIO_BENCH_TASKS", "").lower() in ("1", "true", "yes", "on"):
    bench.enable()


def server_url() -> str:
    """``STUDIO_SERVER_URL``, or the studio on this machine at ``HOST``/``PORT``."""
    configured = os.environ.get("STUDIO_SERVER_URL", "").strip()
    if configured:
        return configured
    host = os.environ.get("HOST", "127.0.0.1")
    return f"http://{'127.0.0.1' if host in ('', '0.0.0.0', '::') else host}:{os.environ.get('PORT', '8000')}"  # noqa: S104


# `studio worker` (app/cli.py) puts the secret here, from the setting or the file a server on
# this machine made.
_secret = os.environ.get("STUDIO_WORKER_SECRET", "")
client = WorkerClient(server_url(), _secret)


def _open_project(task: dict[str, Any]) -> ProjectFiles | None:
    return RemoteProject(client, task) if task.get("project_folder") else None


_runtime = Runtime(
    RemoteLedger(client),
    _open_project,
    Path(os.environ.get("STUDIO_MODELS_DIR", "data/runtime/models")).resolve(),
    http_delivery(client.base, _secret),
    policy=RetryPolicy.from_env(),
)
actors = make_actors(broker, lambda: _runtime)
# Webhook deliveries run here too (cpu queue); their targets and log are the server's.
webhook_actor = delivery_actor(RemoteWebhookBook(client), broker)

try:
    client.ping()
except WorkerRefused as exc:
    log.error("worker_refused %s", exc)
except Exception as exc:  # the server may start after its workers: say so, and carry on
    log.warning("studio_not_reachable_yet url=%s error=%s", client.base, exc)
