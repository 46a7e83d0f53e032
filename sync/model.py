"""The project document as plain data, and its files on disk.

The state is the plain-data form of the project's CRDT document (CONTRACT.md):
``meta`` (Map), ``canvases`` (Map), ``story`` (Map), ``assets`` (Map), ``takes`` (Map) and
``chat`` (Array). ``state_to_files`` lays it out as the files of a project repository and
``files_to_state`` reads it back; the two are exact inverses. The shapes of ``story``,
``chat``, ``assets`` and ``takes`` are documented in ``sync/MODEL.md``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sync.jsonfile import dumps

FORMAT_VERSION = 1
MANIFEST = "project.json"
CANVAS_DIR = "02_Source_Creative/Canvases"
STORY_FILE = "02_Source_Creative/story.json"
CHAT_FILE = "02_Source_Creative/chat.json"
ASSETS_FILE = "04_Project_Files/assets.json"
TAKES_FILE = "04_Project_Files/takes.json"

Files = dict[str, bytes]
State = dict[str, Any]


def empty_state(*, uuid: str, name: str, template: str, created: str, description: str = "") -> State:
    """A project with one empty canvas named "Main" and no story yet."""
    return {
        "meta": {
            "uuid": uuid,
            "name": name,
            "template": template,
            "created": created,
            "description": description,
            "open_canvas": "main",
        },
        "canvases": {"main": {"name": "Main", "order": 0, "nodes": {}, "edges": {}}},
        "story": {
            "template": template,
            "logline": "",
            "acts": {},
            "plot_points": {},
            "beats": {},
            "characters": {},
            "scenes": {},
        },
        "assets": {},
        "takes": {},
        "chat": [],
    }


def apply_template(state: State, template: dict[str, Any]) -> State:
    """Give ``state`` the acts, plot points and beats of ``template`` (keyed by id, with ``order``)."""
    story = state["story"]
    story["template"] = template["id"]
    story["running_time_min"] = template.get("running_time_min", 110)
    for section in ("acts", "plot_points", "beats"):
        story[section] = {
            item["id"]: {**{k: v for k, v in item.items() if k != "id"}, "order": i}
            for i, item in enumerate(template.get(section, []))
        }
    return state


def apply_sample(state: State, sample: dict[str, Any]) -> State:
    """Fill ``state`` with a sample project's story, canvases and chat."""
    story = state["story"]
    story["logline"] = sample.get("logline", "")
    story["characters"] = copy.deepcopy(sample.get("characters", {}))
    story["scenes"] = copy.deepcopy(sample.get("scenes", {}))
    if sample.get("canvases"):
        state["canvases"] = copy.deepcopy(sample["canvases"])
        state["meta"]["open_canvas"] = min(
            state["canvases"], key=lambda c: state["canvases"][c].get("order", 0)
        )
    state["chat"] = copy.deepcopy(sample.get("chat", []))
    return state


def state_to_files(state: State) -> Files:
    """The files (path relative to the project root → bytes) that hold ``state``."""
    meta = state["meta"]
    manifest = {
        "format": FORMAT_VERSION,
        "uuid": meta["uuid"],
        "name": meta["name"],
        "template": meta["template"],
        "created": meta["created"],
        "description": meta.get("description", ""),
        "canvases": {
            cid: {"name": c.get("name", cid), "order": c.get("order", 0), "file": f"{CANVAS_DIR}/{cid}.json"}
            for cid, c in state["canvases"].items()
        },
        "open_canvas": meta.get("open_canvas") or next(iter(state["canvases"]), ""),
    }
    files: Files = {MANIFEST: dumps(manifest).encode()}
    for cid, canvas in state["canvases"].items():
        body = {
            "id": cid,
            "name": canvas.get("name", cid),
            "nodes": canvas.get("nodes", {}),
            "edges": canvas.get("edges", {}),
        }
        files[f"{CANVAS_DIR}/{cid}.json"] = dumps(body).encode()
    files[STORY_FILE] = dumps(state["story"]).encode()
    files[CHAT_FILE] = dumps({"messages": state["chat"]}).encode()
    files[ASSETS_FILE] = dumps(state["assets"]).encode()
    files[TAKES_FILE] = dumps(state["takes"]).encode()
    return files


class InvalidProjectFile(ValueError):
    """A project file that cannot be read as part of a project; says which file and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def files_to_state(root: Path) -> State:
    """Read the state of the project whose working tree is ``root``.

    Raises :class:`InvalidProjectFile` naming the first file that is malformed or misshapen.
    """

    def read(rel: str) -> bytes | None:
        path = root / rel
        return path.read_bytes() if path.is_file() else None

    return read_state(read)


def read_state(read: Callable[[str], bytes | None]) -> State:
    """The state from project files fetched by ``read(relative path)`` (a folder or a Git tree)."""
    manifest = _load(read, MANIFEST, dict, required=True)
    for key in ("uuid", "name"):
        if not isinstance(manifest.get(key), str):
            raise InvalidProjectFile(MANIFEST, f"'{key}' must be text")
    entries = manifest.get("canvases", {})
    if not isinstance(entries, dict):
        raise InvalidProjectFile(MANIFEST, "'canvases' must be an object of canvas id to canvas")
    canvases: dict[str, Any] = {}
    for cid, entry in entries.items():
        if not isinstance(entry, dict):
            raise InvalidProjectFile(MANIFEST, f"canvas '{cid}' must be an object")
        rel = entry.get("file", f"{CANVAS_DIR}/{cid}.json")
        body = _load(read, rel, dict, required=True)
        nodes, edges = body.get("nodes", {}), body.get("edges", {})
        _check_graph(rel, nodes, edges)
        canvases[cid] = {
            "name": body.get("name", entry.get("name", cid)),
            "order": entry.get("order", 0),
            "nodes": nodes,
            "edges": edges,
        }
    chat = _load(read, CHAT_FILE, dict).get("messages", [])
    if not isinstance(chat, list) or not all(isinstance(m, dict) for m in chat):
        raise InvalidProjectFile(CHAT_FILE, "'messages' must be a list of message objects")
    return {
        "meta": {
            "uuid": manifest["uuid"],
            "name": manifest["name"],
            "template": manifest.get("template", "blank"),
            "created": manifest.get("created", ""),
            "description": manifest.get("description", ""),
            "open_canvas": manifest.get("open_canvas", ""),
        },
        "canvases": canvases,
        "story": _load(read, STORY_FILE, dict),
        "assets": _load(read, ASSETS_FILE, dict),
        "takes": _load(read, TAKES_FILE, dict),
        "chat": chat,
    }


def _load(read: Callable[[str], bytes | None], rel: str, kind: type, *, required: bool = False) -> Any:
    data = read(rel)
    if data is None:
        if required:
            raise InvalidProjectFile(rel, "the file is missing")
        return kind()
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidProjectFile(rel, f"not valid JSON ({exc})") from None
    if not isinstance(value, kind):
        raise InvalidProjectFile(rel, f"must hold a JSON {'object' if kind is dict else 'list'}")
    return value


def _check_graph(rel: str, nodes: Any, edges: Any) -> None:
    if not isinstance(nodes, dict) or not isinstance(edges, dict):
        raise InvalidProjectFile(rel, "'nodes' and 'edges' must be objects keyed by id")
    for nid, node in nodes.items():
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            raise InvalidProjectFile(rel, f"node '{nid}' needs a 'type'")
        for axis in ("x", "y"):
            if not isinstance(node.get(axis, 0), int | float) or isinstance(node.get(axis), bool):
                raise InvalidProjectFile(rel, f"node '{nid}' has a non-numeric '{axis}'")
        if not isinstance(node.get("params", {}), dict):
            raise InvalidProjectFile(rel, f"node '{nid}' has 'params' that are not an object")
    for eid, edge in edges.items():
        if not isinstance(edge, dict) or not all(isinstance(edge.get(k), str) for k in ("source", "target")):
            raise InvalidProjectFile(rel, f"edge '{eid}' needs a 'source' and a 'target'")


def story_text(state: State) -> str:
    """All the words of the story, for the full-text index."""
    story = state.get("story", {})
    parts: list[str] = [story.get("logline", "")]
    for section in ("characters", "scenes"):
        for item in story.get(section, {}).values():
            parts += [str(item.get(k, "")) for k in ("name", "title", "description", "synopsis")]
            for shot in item.get("shots", {}).values():
                parts.append(str(shot.get("description", "")))
    return " ".join(p for p in parts if p)
