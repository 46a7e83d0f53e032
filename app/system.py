"""Health and reference data."""

from __future__ import annotations

import shutil
import time
from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency

from app.accounts.service import User
from app.deps import Services, authenticate
from sync.templates import all_templates

STARTED = time.time()


@get("/api/health", sync_to_thread=False, tags=["system"])
def health(request: Request[Any, Any, Any], svc: NamedDependency[Services]) -> dict[str, Any]:
    """``{"status": "ok"}`` with the state of each component."""
    studio = svc.studio
    components: dict[str, Any] = {}
    try:
        components["index"] = {"status": "ok", "schema": studio.index.version}
    except Exception as exc:
        components["index"] = {"status": "error", "detail": str(exc)}
    ws = studio.workspace
    components["workspace"] = {"status": "ok" if ws.projects.is_dir() else "error"}
    components["git"] = {"status": "ok" if shutil.which("git") else "missing"}
    # As last seen by the event relay or a send: answering never waits on Redis.
    components["broker"] = request.app.state.broker_health.as_dict()
    components["pwa"] = {"status": "ok" if (studio.settings.pwa_dir / "index.html").exists() else "missing"}
    status = (
        "ok"
        if all(c["status"] == "ok" for k, c in components.items() if k in ("index", "workspace", "broker"))
        else "degraded"
    )
    return {"status": status, "uptime_s": round(time.time() - STARTED, 1), "components": components}


@get("/api/templates", before_request=authenticate, sync_to_thread=False, tags=["projects"])
def templates(user: NamedDependency[User]) -> list[dict[str, Any]]:
    """The story templates a project can start from."""
    return [
        {
            "id": t["id"],
            "name": t["name"],
            "description": t.get("description", ""),
            "running_time_min": t.get("running_time_min"),
            "acts": t.get("acts", []),
            "plot_points": t.get("plot_points", []),
            "beats": t.get("beats", []),
        }
        for t in all_templates().values()
    ]
