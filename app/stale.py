"""Dependency changes: when an asset's file changes, the nodes that use it are marked stale.

A node uses an asset when one of its ``params`` holds the asset's id or its path (``"asset"``,
``"image"``, ``"init_image"`` … or a list of them). When the file changes, whether replaced
through ``PUT /api/projects/{id}/assets/{asset_id}/file`` or edited on disk by another tool
(seen by the watcher), the asset's ``sha256``/``size`` are updated in the doc and each such node
gets ``stale: {"reason", "asset", "since"}``, through the live room so every client sees it,
and is committed. Each stale node is a ``node.stale`` event on ``/events`` naming its owners
(the people who ran tasks for it, else the project's owners) and a line in the activity feed.
A new take of the node clears the mark (``app.outputs``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycrdt import Doc

from app.activity import Publish, record_activity
from app.studio import Studio, now_iso
from sync.docmodel import doc_to_state, read_root, set_path
from sync.rooms import FILESYSTEM, Rooms


def nodes_using(state: dict[str, Any], asset_id: str, asset: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(canvas id, node id, node label) of every node whose params name the asset."""
    names = {asset_id, str(asset.get("path", ""))} - {""}

    def refers(value: Any) -> bool:
        if isinstance(value, str):
            return value in names
        if isinstance(value, list):
            return any(refers(v) for v in value)
        if isinstance(value, dict):
            return any(refers(v) for v in value.values())
        return False

    found = []
    for canvas_id, canvas in state["canvases"].items():
        for node_id, node in (canvas.get("nodes") or {}).items():
            if isinstance(node, dict) and refers(node.get("params") or {}):
                found.append((canvas_id, node_id, str(node.get("label") or node.get("type") or node_id)))
    return found


class AssetChanges:
    def __init__(self, studio: Studio, rooms: Rooms, publish: Publish) -> None:
        self.studio, self.rooms, self.publish = studio, rooms, publish
        # (project id, path) → sha256 of a write the studio itself is making (a replace): the
        # watcher seeing it is not an outside edit.
        self.expected: dict[tuple[str, str], str] = {}
        # Called with (project id, asset) after an edit on disk: the preview is made again.
        self.on_edited: Callable[[str, dict[str, Any]], None] = lambda project_id, asset: None

    async def changed(self, project_id: str, asset_id: str, *, sha256: str, size: int,
                      user_id: str | None, reason: str) -> list[dict[str, Any]]:  # fmt: skip
        """Record the asset's new content and mark the nodes using it stale; the nodes marked."""
        room = await self.rooms.get(project_id)
        state = doc_to_state(room.doc)
        asset = state["assets"].get(asset_id)
        if asset is None:
            return []
        using = nodes_using(state, asset_id, asset)
        since = now_iso()
        mark = {"reason": reason, "asset": asset_id, "since": since}

        def mutate(doc: Doc[Any]) -> None:
            with doc.transaction():
                set_path(doc, ["assets", asset_id, "sha256"], sha256)
                set_path(doc, ["assets", asset_id, "size"], size)
                set_path(doc, ["assets", asset_id, "updated"], since)
                for canvas_id, node_id, _ in using:
                    set_path(doc, ["canvases", canvas_id, "nodes", node_id, "stale"], mark)

        room.apply_local(user_id or FILESYSTEM, mutate)
        await self.rooms.flush(project_id, note=f"{asset.get('name', asset_id)} changed")
        changed = {"type": "asset.changed", "project_id": project_id, "asset": {**asset, "sha256": sha256,
                   "size": size, "id": asset_id}, "reason": reason, "stale_nodes": len(using)}  # fmt: skip
        self.publish(changed)
        record_activity(self.studio, project_id, user_id, "asset.changed", reason, changed,
                        event_id=str(changed["id"]))  # fmt: skip
        marked = []
        for canvas_id, node_id, label in using:
            owners = self._owners(project_id, node_id)
            event = {"type": "node.stale", "project_id": project_id, "canvas": canvas_id, "node": node_id,
                     "asset": asset_id, "reason": reason, "owners": owners}  # fmt: skip
            self.publish(event)
            record_activity(self.studio, project_id, user_id, "node.stale",
                            f"{label} is out of date: {reason}", event, event_id=str(event["id"]))  # fmt: skip
            marked.append(event)
        return marked

    async def files_changed(self, project_id: str, paths: set[str]) -> None:
        """The watcher saw ``paths`` (relative to the project) change on disk: changes of asset
        files that the studio did not make itself count as edits."""
        root = self.rooms.project_root(project_id)
        if root is None:
            return
        room = await self.rooms.get(project_id)
        assets = read_root(room.doc, "assets")
        for asset_id, asset in assets.items():
            rel = asset.get("path")
            if rel not in paths or not (root / rel).is_file():
                continue
            sha256, size = await asyncio.to_thread(file_digest, root / rel)
            if sha256 == asset.get("sha256") or self.expected.get((project_id, rel)) == sha256:
                continue
            await self.changed(project_id, asset_id, sha256=sha256, size=size, user_id=None,
                               reason=f"{asset.get('name', rel)} was edited on disk")  # fmt: skip
            self.on_edited(project_id, {**asset, "id": asset_id})

    def _owners(self, project_id: str, node_id: str) -> list[str]:
        db = self.studio.index.db
        rows = db.execute(
            "SELECT DISTINCT requester_id FROM tasks WHERE project_id = ? AND requester_id IS NOT NULL AND "
            "(node_id = ? OR json_extract(params, '$.target.node') = ?)",
            [project_id, node_id, node_id],
        ).fetchall()
        if not rows:
            rows = db.execute(
                "SELECT user_id FROM members WHERE project_id = ? AND role = 'owner'", [project_id]
            ).fetchall()
        return sorted(str(r[0]) for r in rows)


def file_digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
