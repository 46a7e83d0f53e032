"""The ``studio`` command: serve, worker, new-project, reindex."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from app.settings import Settings, SettingsError, load_settings
from tasks.outputs import SECRET_FILE, stored_worker_secret


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="studio", description="Generative Media Studio")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the studio server (Granian)")
    serve.add_argument("--host", default=None, help="address to bind (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: PORT or 8000)")
    worker = sub.add_parser("worker", help="run Dramatiq workers for a configured broker")
    worker.add_argument("--queues", default="gpu,cpu", help="comma-separated queues (default gpu,cpu)")
    worker.add_argument("--processes", type=int, default=1)
    worker.add_argument("--threads", type=int, default=2)
    new = sub.add_parser("new-project", help="create a project; prints its id and path")
    new.add_argument("name")
    new.add_argument("--template", default="blank")
    new.add_argument("--owner", default=None, help="email of the account that will own it")
    sub.add_parser("reindex", help="rebuild the SQLite index from the project repositories")
    mat = sub.add_parser("materialize", help="write every project's document from the update log into Git")
    mat.add_argument("--project", default=None, help="only this project id")
    args = parser.parse_args(argv)
    # Logs go to stderr so a command's stdout stays what scripts read (an id, a path).
    from app import logs

    logs.configure("console", level=logging.WARNING if args.command != "serve" else logging.INFO)
    try:
        return int(COMMANDS[args.command](args))
    except SettingsError as exc:
        print(f"studio: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from granian import Granian
    from granian.constants import Interfaces

    overrides = {k: v for k, v in (("HOST", args.host), ("PORT", args.port)) if v is not None}
    settings = load_settings(**overrides)
    # The app factory reads settings from the environment in the Granian worker process.
    os.environ["HOST"], os.environ["PORT"] = settings.host, str(settings.port)
    print(f"studio: serving on http://{settings.host}:{settings.port}", file=sys.stderr)
    Granian(
        "app.main:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=1,
        log_access=False,
        websockets=True,
    ).serve()
    return 0


def _worker(args: argparse.Namespace) -> int:
    # A worker keeps nothing on disk: its data dir and workspace are not created (or needed).
    settings = load_settings(prepare=False)
    if not settings.broker_url:
        print(
            "studio worker: STUDIO_BROKER_URL is not set. With no broker the server runs its workers "
            "itself; set STUDIO_BROKER_URL=redis://… to run separate workers.",
            file=sys.stderr,
        )
        return 2
    secret = _worker_secret(settings)
    if secret is None:
        print(
            "studio worker: STUDIO_WORKER_SECRET is not set. Set it to the server's STUDIO_WORKER_SECRET "
            f"(or run the worker where the server's {settings.data_dir / SECRET_FILE} can be read).",
            file=sys.stderr,
        )
        return 2
    # Read by Dramatiq when it is imported (below): an idle worker looks for work every 100 ms
    # instead of backing off to 1 s (a task waited that long to start), and after losing Redis
    # it tries again every second.
    os.environ.setdefault("dramatiq_worker_timeout", "100")
    os.environ.setdefault("dramatiq_restart_delay", "1000")
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    # The worker processes read their settings from the environment (tasks/worker_entry.py):
    # hand them what was validated here, values from .env included.
    os.environ.update({
        "STUDIO_BROKER_URL": settings.broker_url, "STUDIO_MODELS_DIR": str(settings.models_dir),
        "HOST": settings.host, "PORT": str(settings.port), "STUDIO_WORKER_SECRET": secret,
        "STUDIO_TASK_MAX_ATTEMPTS": str(settings.task_max_attempts),
        "STUDIO_TASK_RETRY_BASE_S": str(settings.task_retry_base_s),
        "STUDIO_TASK_STALE_S": str(settings.task_stale_s),
        "STUDIO_BENCH_TASKS": "true" if settings.bench_tasks else "",
    })  # fmt: skip
    if settings.server_url:
        os.environ["STUDIO_SERVER_URL"] = settings.server_url

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    options = make_argument_parser().parse_args(  # type: ignore[no-untyped-call]
        [
            "tasks.worker_entry",
            "--processes",
            str(args.processes),
            "--threads",
            str(args.threads),
            "--queues",
            *queues,
        ]
    )
    return int(dramatiq_main(options))  # type: ignore[no-untyped-call]


def _worker_secret(settings: Settings) -> str | None:
    """``STUDIO_WORKER_SECRET``; else, for a worker beside its server, the secret that server
    keeps in its data folder."""
    if settings.worker_secret:
        return settings.worker_secret.get_secret_value()
    return stored_worker_secret(settings.data_dir)


def _new_project(args: argparse.Namespace) -> int:
    from app.accounts.service import Accounts, User
    from app.problems import Problem
    from app.projects.service import Projects
    from app.studio import Studio
    from sync.workspace import ProjectLocks

    studio = Studio.open(load_settings())
    owner: User | None = None
    if args.owner:
        owner = Accounts(studio).find_by_email(args.owner)
        if owner is None:
            print(f"studio new-project: no account has the email {args.owner}", file=sys.stderr)
            return 2
    projects = Projects(studio, ProjectLocks())
    try:
        project, _ = projects.create(owner, args.name, args.template)
    except Problem as exc:
        print(f"studio new-project: {exc.detail}", file=sys.stderr)
        return 2
    print(project["id"])
    print(studio.workspace.root / project["path"])
    return 0


def _reindex(args: argparse.Namespace) -> int:
    from app.projects.service import Projects
    from app.studio import Studio
    from sync.workspace import ProjectLocks

    studio = Studio.open(load_settings())
    counts = Projects(studio, ProjectLocks()).reindex()
    print(f"reindexed: {counts['added']} added, {counts['updated']} updated, {counts['removed']} removed")
    return 0


def _materialize(args: argparse.Namespace) -> int:
    from app.projects.live import rebuild_repositories
    from app.studio import Studio

    for project_id, outcome in rebuild_repositories(Studio.open(load_settings()), args.project).items():
        print(f"{project_id}: {outcome}")
    return 0


COMMANDS = {
    "serve": _serve,
    "worker": _worker,
    "new-project": _new_project,
    "reindex": _reindex,
    "materialize": _materialize,
}

if __name__ == "__main__":
    raise SystemExit(main())
