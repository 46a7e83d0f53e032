"""Edits made to project files by other tools (an editor, a script, ``git pull``/``git checkout``),
merged into the live documents.

watchfiles reports changed files under ``Projects/``; the materializer's own writes are
recognised by their content hash and ignored. For every project with outside changes the files
are read back (``sync.model.files_to_state``); a file that fails validation is not merged and
``on_invalid`` is told which file and why; otherwise the document receives the smallest set of
CRDT operations that makes it equal to the files, attributed to "filesystem". Changes of media
files under ``01_Assets/`` go to ``on_media`` (project id, paths relative to the project), which
tells the people whose nodes use them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import watchfiles

from sync.docmodel import apply_state
from sync.model import MANIFEST, InvalidProjectFile, files_to_state
from sync.rooms import FILESYSTEM, Rooms

log = logging.getLogger("sync.watcher")
IGNORED_PARTS = {".git", "05_Cache", "06_Exports", "03_Renders", "01_Assets"}
ASSETS = "01_Assets"


class Watcher:
    def __init__(
        self,
        projects_dir: Path,
        rooms: Rooms,
        project_id_for: Callable[[Path], str | None],
        on_invalid: Callable[[str, str, str], None],
        on_media: Callable[[str, set[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.projects_dir = projects_dir.resolve()
        self.rooms = rooms
        self.project_id_for = project_id_for
        self.on_invalid = on_invalid
        self.on_media = on_media
        self.stop_event = asyncio.Event()
        self.merged = 0  # how many outside edits were merged (for tests and the health check)
        # path → stamp of the last write by another server process already seen here (each is
        # recognised once, as this process's own writes are).
        self._seen_shared: dict[Path, float] = {}

    async def run(self) -> None:
        """Watch until :meth:`stop`; survives errors in one batch."""
        # rust_timeout bounds how long the watching thread waits before it looks at the stop event;
        # the default kept a stopping server waiting for seconds.
        async for changes in watchfiles.awatch(
            self.projects_dir,
            stop_event=self.stop_event,
            debounce=200,
            step=50,
            recursive=True,
            rust_timeout=300,
        ):
            try:
                await self.handle({Path(path) for _, path in changes})
            except Exception:
                log.exception("watcher_batch_failed")

    def stop(self) -> None:
        self.stop_event.set()

    async def handle(self, paths: set[Path]) -> None:
        """Merge the outside edits among ``paths`` (absolute) into their projects' documents."""
        folders: set[Path] = set()
        media: dict[Path, set[str]] = {}
        written = self.rooms.materializer.written
        for path in paths:
            try:
                rel = path.resolve().relative_to(self.projects_dir)
            except ValueError:
                continue
            if (
                len(rel.parts) > 2
                and rel.parts[1] == ASSETS
                and not path.name.startswith(".")
                and path.suffix != ".json"
            ):
                media.setdefault(self.projects_dir / rel.parts[0], set()).add("/".join(rel.parts[1:]))
                continue
            if len(rel.parts) < 2 or IGNORED_PARTS & set(rel.parts) or path.name.startswith("."):
                continue
            if path.suffix != ".json":
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            if digest is not None and written.get(path) == digest:
                written.pop(path, None)
                self._studio_wrote(path, digest)
                continue  # our own write coming back (merging it would change nothing anyway)
            if digest is not None and self._studio_wrote(path, digest):
                continue  # another server process's write: its room took the edit, ours catches up
            folders.add(self.projects_dir / rel.parts[0])
        for folder in sorted(folders):
            await self._merge(folder)
        for folder, rels in sorted(media.items()):
            project_id = self.project_id_for(folder)
            if project_id is not None and self.on_media is not None:
                await self.on_media(project_id, rels)

    def _studio_wrote(self, path: Path, digest: str) -> bool:
        """Whether ``digest`` is what a studio materializer (of any process) last wrote to ``path``
        and this watcher has not seen that write yet."""
        shared = self.rooms.materializer.shared
        last = shared.last(path) if shared is not None else None
        if last is None or last[0] != digest or self._seen_shared.get(path) == last[1]:
            return False
        self._seen_shared[path] = last[1]
        return True

    async def _merge(self, folder: Path) -> None:
        project_id = self.project_id_for(folder)
        if project_id is None:
            return
        try:
            state = await asyncio.to_thread(files_to_state, folder)
        except InvalidProjectFile as exc:
            log.warning("outside_edit_refused project=%s file=%s reason=%s", project_id, exc.path, exc.reason)
            self.on_invalid(project_id, exc.path, exc.reason)
            return
        if state["meta"]["uuid"] != project_id:
            self.on_invalid(project_id, MANIFEST, "the uuid was changed; a project keeps its uuid")
            return
        room = await self.rooms.get(project_id)
        if room.apply_local(FILESYSTEM, lambda doc: apply_state(doc, state)):
            self.merged += 1
            log.info("outside_edit_merged project=%s", project_id)
