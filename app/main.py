"""``create_app()``: the one place the Litestar app is put together."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import logging
import re
import signal
import threading
from functools import cache
from pathlib import Path
from typing import Any

import dramatiq
from litestar import Litestar, Request, Response
from litestar.config.compression import CompressionConfig
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.static_files import create_static_files_router

from app import logs
from app.accounts.controllers import AuthController, MeController
from app.accounts.service import Accounts
from app.activity import task_activity
from app.assets import AssetController, asset_kinds, queue_thumbnail
from app.deps import DEPENDENCIES, Services
from app.edge import EdgeMiddleware
from app.events import EventHub, events_socket
from app.outputs import Outputs, upload_outputs
from app.problems import handle_exception
from app.projects.controllers import ProjectController
from app.projects.live import build_rooms, build_watcher
from app.projects.service import Projects
from app.projects.transfer import Transfers
from app.settings import Settings, load_settings
from app.stale import AssetChanges
from app.studio import Studio
from app.sync_socket import sync_socket
from app.system import health, templates
from app.takes import TakeController
from app.tasks_api import TaskController
from app.webhooks_api import WebhookController
from app.worker_api import WorkerController
from sync.builders import Builders
from sync.indexwriter import IndexWriter
from sync.lifetime import die_with_parent
from sync.materializer import Committed
from sync.workspace import ProjectLocks
from tasks import bench
from tasks.broker import (
    AWARENESS_CHANNEL,
    SYNC_CHANNEL,
    BrokerHealth,
    EventPublisher,
    QueueUnavailable,
    backlog,
    build_broker,
    relay_events,
)
from tasks.failures import RetryPolicy
from tasks.ledger import LocalLedger
from tasks.outputs import worker_secret
from tasks.project_files import LocalProject
from tasks.reaper import Watchdog
from tasks.remote import WORKER_HEADER, WorkerToken
from tasks.runner import Runtime, make_actors, turn_sender
from tasks.store import TaskStore
from tasks.webhooks import Webhooks

API_PREFIXES = ("/api", "/sync", "/events", "/schema")
FALLBACK_PAGE = Path(__file__).resolve().parent / "fallback"


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the studio's ASGI app from ``settings`` (read from the environment when omitted)."""
    settings = settings or load_settings()
    logs.configure(settings.log_format)
    studio = Studio.open(settings)
    locks = ProjectLocks()  # one lock per repository, for the materializer, trash and bundles alike
    projects = Projects(studio, locks)
    builders = Builders(studio.workspace)  # builder processes for bursts of new projects
    writer = IndexWriter(studio.index)  # moves them into place and registers them, a burst in one commit
    rooms = build_rooms(studio, locks)
    task_store = TaskStore(studio.index)
    hub = EventHub(studio.index)
    publisher = EventPublisher(settings.broker_url, hub.origin) if settings.broker_url else None
    # With Redis, what happens here reaches the listeners of every other server process too.
    hub.remote = publisher
    # Rooms of one project in several server processes take each other's updates (sync/SPEC.md S1).
    doorbell = EventPublisher(settings.broker_url, hub.origin, SYNC_CHANNEL) if settings.broker_url else None
    presence = (
        EventPublisher(settings.broker_url, hub.origin, AWARENESS_CHANNEL) if settings.broker_url else None
    )
    if doorbell is not None and presence is not None:
        rooms.on_append = lambda project_id: doorbell({"project_id": project_id})
        rooms.on_evict = lambda project_id: doorbell({"project_id": project_id, "evicted": True})
        rooms.on_awareness = lambda project_id, payload: presence(
            {"project_id": project_id, "awareness": base64.b64encode(payload).decode("ascii")}
        )
        rooms.on_loaded = lambda project_id: presence({"project_id": project_id, "query": True})
    # Every event this process hears of, its own or relayed: how tasks end goes to the activity, once.
    hub.observers.append(task_activity(studio, hub.publish))
    if settings.bench_tasks:
        bench.enable()
    broker = build_broker(settings.broker_url)
    broker_health = BrokerHealth("redis" if settings.broker_url else "embedded")
    webhooks = Webhooks(studio.index, broker)

    def publish(event: dict[str, Any]) -> None:
        # Task events that happen in this process (its workers, its task routes) go to every
        # /events listener and, from here only, to the project's webhooks.
        hub.publish(event)
        webhooks.fire(event)

    policy = RetryPolicy(max_attempts=settings.task_max_attempts, base_s=settings.task_retry_base_s,
                         stale_s=settings.task_stale_s)  # fmt: skip
    secret = worker_secret(
        settings.data_dir, settings.worker_secret.get_secret_value() if settings.worker_secret else None
    )
    worker_token = WorkerToken(secret)
    outputs = Outputs(studio, rooms, task_store, hub.publish, secret)
    asset_changes = AssetChanges(studio, rooms, hub.publish)
    # One ledger of task state for this process's workers and, through the worker API, for
    # `studio worker` processes anywhere.
    ledger = LocalLedger(task_store, publish)

    def open_project(task: dict[str, Any]) -> LocalProject | None:
        root = rooms.project_root(task["project_id"])
        return LocalProject(root) if root is not None else None

    runtime = Runtime(ledger, open_project, settings.models_dir, outputs.in_process(), policy=policy)
    actors = make_actors(broker, lambda: runtime)
    ledger.send_turn = send_turn = turn_sender(actors)
    watchdog = Watchdog(task_store, policy, publish, send_turn, lambda queue: backlog(broker, queue))
    workers: list[dramatiq.Worker] = []
    index_commit = rooms.materializer.on_commit

    def on_commit(committed: Committed) -> None:
        index_commit(committed)
        event = {"type": "project.committed", "project_id": committed.project_id, "sha": committed.sha,
                 "message": committed.message, "authors": [a.name for a in committed.authors]}  # fmt: skip
        hub.publish(event)
        webhooks.fire(event)

    rooms.materializer.on_commit = on_commit

    def send_task(task: dict[str, Any]) -> None:
        """One turn for the task's queue; :class:`QueueUnavailable` when the broker is away."""
        try:
            send_turn(task["queue"], 0.0)
        except Exception as exc:
            broker_health.mark(False, f"Redis is not reachable ({type(exc).__name__}: {exc})")
            raise QueueUnavailable(str(exc)) from exc

    pwa_dir = settings.pwa_dir if (settings.pwa_dir / "index.html").exists() else FALLBACK_PAGE

    async def purge_hourly() -> None:
        # A studio can run for weeks: the trash is emptied of expired projects every hour.
        while True:
            await asyncio.sleep(3600)
            try:
                await asyncio.to_thread(projects.purge_expired)
            except Exception:
                logs.get_logger("app").exception("trash_purge_failed")

    async def watch_tasks() -> None:
        # Running tasks whose worker went silent are retried or failed; lost turns are replaced.
        while True:
            await asyncio.sleep(watchdog.every_s)
            try:
                await asyncio.to_thread(watchdog.sweep)
            except Exception as exc:
                logs.get_logger("app").warning("task_watchdog_failed", error=repr(exc))

    def on_startup(app: Litestar) -> None:
        # Granian serves from worker processes; after a `kill -9` of `studio serve` an orphaned
        # worker would go on holding rooms and sockets that a restarted server cannot see.
        die_with_parent(signal.SIGTERM)
        hub.loop = outputs.loop = asyncio.get_running_loop()
        # Embedded: whatever was running died with the previous process. With Redis, workers
        # elsewhere may still be running theirs: the watchdog judges those by their heartbeats.
        interrupted, waiting = task_store.recover(fail_running=not settings.broker_url)
        if not settings.broker_url:
            # The embedded default: this process is its own worker. gpu runs one task at a time.
            # Each Worker adds its middleware to the broker; Dramatiq warns about the second one,
            # which is harmless here (each consumes only the queues it names), so say nothing.
            logging.getLogger(f"dramatiq.broker.{type(broker).__name__}").addFilter(_second_worker_is_fine)
            workers.extend([dramatiq.Worker(broker, queues={"gpu"}, worker_threads=1, worker_timeout=100),
                            dramatiq.Worker(broker, queues={"cpu"}, worker_threads=2, worker_timeout=100)])  # fmt: skip
            for worker in workers:
                worker.start()
        if settings.broker_url:
            # `studio worker` processes and the other servers publish their events on Redis; relay
            # them to this process's listeners (this process's own were delivered already).
            app.state.relay_stop = threading.Event()
            relay_events(
                settings.broker_url, hub.receive, app.state.relay_stop, broker_health, origin=hub.origin
            )
            # S1: another server took updates for a project; a room of it here catches up.
            loop = asyncio.get_running_loop()

            def ring(message: dict[str, Any]) -> None:
                project_id = str(message.get("project_id"))
                with contextlib.suppress(RuntimeError):  # the loop is shutting down
                    if message.get("evicted"):  # trashed through another server: close our peers
                        asyncio.run_coroutine_threadsafe(rooms.drop(project_id), loop)
                    else:
                        loop.call_soon_threadsafe(rooms.catch_up, project_id)

            relay_events(
                settings.broker_url, ring, app.state.relay_stop, origin=hub.origin, channel=SYNC_CHANNEL
            )

            def present(message: dict[str, Any]) -> None:
                # S2: who is here on another server (or a request to say who is here on this one).
                project_id = str(message.get("project_id"))
                with contextlib.suppress(RuntimeError, ValueError):
                    if message.get("query"):
                        loop.call_soon_threadsafe(rooms.share_awareness, project_id)
                    else:
                        payload = base64.b64decode(str(message.get("awareness", "")), validate=True)
                        loop.call_soon_threadsafe(rooms.take_awareness, project_id, payload)

            relay_events(settings.broker_url, present, app.state.relay_stop, origin=hub.origin,
                         channel=AWARENESS_CHANNEL)  # fmt: skip
        for started in (publisher, doorbell, presence):
            if started is not None:
                started.start()
        for task_id in waiting:
            task = task_store.get(task_id)
            if task is not None:
                with contextlib.suppress(QueueUnavailable):  # the watchdog sends it once Redis is back
                    send_task(task)
        app.state.watchdog = asyncio.get_running_loop().create_task(watch_tasks())
        if interrupted or waiting:
            logs.get_logger("app").info("tasks_recovered", failed=len(interrupted), requeued=len(waiting))
        purged = projects.purge_expired()
        app.state.purger = asyncio.get_running_loop().create_task(purge_hourly())
        app.state.watcher = build_watcher(studio, rooms, on_media=asset_changes.files_changed)
        app.state.watching = asyncio.get_running_loop().create_task(app.state.watcher.run())
        # Everything built at start lives as long as the process: keep it out of the collector's
        # scans, which otherwise show up as latency spikes under load.
        gc.collect()
        gc.freeze()
        logs.get_logger("app").info(
            "studio_started",
            workspace=str(settings.workspace_root),
            pwa=str(pwa_dir),
            purged_from_trash=purged,
        )

    async def on_shutdown(app: Litestar) -> None:
        builders.close()
        app.state.purger.cancel()
        app.state.watchdog.cancel()
        app.state.watcher.stop()
        app.state.watching.cancel()
        for worker in workers:
            await asyncio.to_thread(worker.stop, 5000)
        if getattr(app.state, "relay_stop", None) is not None:
            app.state.relay_stop.set()
        for started in (publisher, doorbell, presence):
            if started is not None:
                started.stop()
        await rooms.close()  # flush every edited document to Git and say goodbye to peers

    def on_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        # Deep links into the single-page app (/projects/…) get the app shell, not a 404.
        path = request.url.path
        if (
            isinstance(exc, NotFoundException)
            and request.method == "GET"
            and not path.startswith(API_PREFIXES)
            and "text/html" in request.headers.get("accept", "")
        ):
            return Response((pwa_dir / "index.html").read_bytes(), media_type="text/html")
        return handle_exception(request, exc)

    csp = _csp(pwa_dir / "index.html")
    app = Litestar(
        route_handlers=[
            health,
            templates,
            asset_kinds,
            sync_socket,
            events_socket,
            TaskController,
            WebhookController,
            upload_outputs,
            WorkerController,
            AssetController,
            TakeController,
            AuthController,
            MeController,
            ProjectController,
            create_static_files_router(
                path="/", directories=[pwa_dir], html_mode=True, include_in_schema=False, name="pwa"
            ),
        ],
        dependencies=DEPENDENCIES,
        exception_handlers={Exception: on_error},
        compression_config=CompressionConfig(backend="brotli", brotli_gzip_fallback=True, minimum_size=512),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Generative Media Studio",
            version="0.1.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        logging_config=None,
    )
    # Outside Litestar's per-route middleware, so unmatched paths (404s) pass the edge too.
    app.asgi_handler = EdgeMiddleware(
        app.asgi_handler,
        host_allowed=settings.host_allowed,
        csp=csp,
        rate_user=settings.rate_limit_user,
        rate_ip=settings.rate_limit_ip,
        rate_auth=settings.rate_limit_auth,
        trusted_header=WORKER_HEADER,
        trusted=worker_token.accepts,
    )
    app.state.events = hub
    app.state.outputs = outputs
    app.state.worker_token = worker_token
    app.state.asset_changes = asset_changes
    asset_changes.on_edited = lambda pid, asset: queue_thumbnail(app.state, task_store, pid, asset, None)
    app.state.publish_task = publish
    app.state.ledger = ledger
    app.state.send_task = send_task
    app.state.broker_health = broker_health
    app.state.webhooks = webhooks.store
    app.state.services = Services(
        studio=studio,
        accounts=Accounts(studio),
        projects=projects,
        transfers=Transfers(projects),
        rooms=rooms,
        tasks=task_store,
        builders=builders,
        writer=writer,
    )
    _allow_large_uploads(app, settings.max_upload_bytes)
    return app


def _allow_large_uploads(app: Litestar, limit: int) -> None:
    # Imports carry whole projects: they get the upload limit, not the JSON body limit.
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.handler_name in ("import_project", "upload_asset", "replace_asset", "upload_outputs"):
                handler.request_max_body_size = limit


@cache
def _script_hashes(index_html: Path) -> tuple[str, ...]:
    try:
        html = index_html.read_text(encoding="utf-8")
    except OSError:
        return ()
    scripts = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, flags=re.S)
    return tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
        if s
    )


def _csp(index_html: Path) -> str:
    scripts = " ".join(("'self'", *_script_hashes(index_html)))
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; worker-src 'self'; "
        "manifest-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
    )


def _second_worker_is_fine(record: logging.LogRecord) -> bool:
    return "same type twice" not in record.getMessage()
