"""The composition root: one object holding the settings, the index and the workspace.

Controllers receive it (or a service built on it) by dependency injection; nothing else
creates an ``Index`` or a ``Workspace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.settings import Settings
from sync.db import Index
from sync.workspace import Workspace


def now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass
class Studio:
    settings: Settings
    index: Index
    workspace: Workspace

    @classmethod
    def open(cls, settings: Settings) -> Studio:
        """Prepare folders, run migrations and return the studio's shared objects."""
        settings.prepare_dirs()
        index = Index(settings.db_path)
        index.migrate()
        workspace = Workspace(settings.workspace_root)
        workspace.ensure_layout()
        return cls(settings=settings, index=index, workspace=workspace)
