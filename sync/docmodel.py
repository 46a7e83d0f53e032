"""The project state as a live CRDT document (pycrdt here, Yjs in the browser).

The document has six top-level shared types (:data:`TOP_LEVEL`). Inside them dicts are
``Y.Map``, lists are ``Y.Array`` and the free-text fields listed in :func:`is_text` are
``Y.Text``, so concurrent edits merge key by key and character by character. Everything else
is a plain value stored directly in its map.

:func:`apply_state` changes a document into a new state with the fewest CRDT operations it
can: keys that did not change are never rewritten, which is what lets two replicas change
different fields at once and keep both changes when their updates merge.

pycrdt indexes ``Text`` by UTF-8 bytes (not by characters, and not by UTF-16 units like
Yjs), and hands every number back as a float; this module hides both.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pycrdt import Array, Doc, Map, Text

from sync.jsonfile import normalize

State = dict[str, Any]

TOP_LEVEL: dict[str, type] = {
    "meta": Map,
    "canvases": Map,
    "story": Map,
    "assets": Map,
    "takes": Map,
    "chat": Array,
}

# The Y.Text fields, as paths of keys from the top-level type; "*" is any id or array index.
_TEXT_FIELDS = """
    meta.description  story.logline  story.scenes.*.synopsis  story.scenes.*.shots.*.description
    story.characters.*.description  canvases.*.nodes.*.params.text  canvases.*.nodes.*.params.prompt
    canvases.*.nodes.*.params.negative  chat.*.text
"""
_TEXT_PATTERNS = tuple(tuple(field.split(".")) for field in _TEXT_FIELDS.split())


def is_text(path: tuple[str, ...]) -> bool:
    """Whether the string at ``path`` (keys from the top-level type; array items by index) is a Y.Text.

    >>> is_text(("canvases", "main", "nodes", "n1", "params", "prompt"))
    True
    >>> is_text(("chat", "3", "text")), is_text(("meta", "name"))
    (True, False)
    """
    return any(
        len(path) == len(pattern) and all(p in ("*", k) for p, k in zip(pattern, path, strict=True))
        for pattern in _TEXT_PATTERNS
    )


def state_to_doc(state: State, doc: Doc[Any] | None = None) -> Doc[Any]:
    """A document holding ``state``, filled in one transaction (into ``doc`` if given, else a new one).

    >>> doc = state_to_doc({"meta": {"name": "Tide"}, "chat": []})
    >>> doc_to_state(doc)["meta"]
    {'name': 'Tide'}
    """
    doc = Doc() if doc is None else doc
    apply_state(doc, state)
    return doc


def doc_to_state(doc: Doc[Any]) -> State:
    """The document as plain data: Text → str, Map → dict, Array → list, integral numbers → int.

    >>> doc_to_state(state_to_doc({"takes": {"t1": {"seed": 7}}}))["takes"]
    {'t1': {'seed': 7}}
    """
    state: State = {}
    with doc.transaction():
        present = set(doc.keys())
        for name, kind in TOP_LEVEL.items():
            if name not in present:
                state[name] = {} if kind is Map else []
                continue
            root = doc[name]
            if root is None:  # known only from an update, not yet given a type here
                root = _root(doc, name)
            state[name] = normalize(root.to_py())
    return state


def read_root(doc: Doc[Any], name: str) -> Any:
    """One top-level type as plain data, as :func:`doc_to_state` gives it, without converting the
    rest of the document (a file request needs one asset, not every canvas)."""
    with doc.transaction():
        return normalize(_root(doc, name).to_py())


def read_entry(doc: Doc[Any], name: str, key: str) -> Any:
    """One entry of the top-level map ``name`` as plain data, or None."""
    with doc.transaction():
        value = doc.get(name, type=Map).get(key)
        return normalize(value.to_py() if isinstance(value, Map | Array | Text) else value)


def apply_state(doc: Doc[Any], new_state: State, origin: str | None = None) -> bool:
    """Make ``doc`` equal to ``new_state`` with the fewest CRDT operations, in one transaction.

    Unchanged keys are left alone, nested maps are updated in place, Text fields get a
    character diff and arrays keep their common prefix and suffix. Top-level types missing from
    ``new_state`` become empty. Returns whether anything changed.

    >>> doc = state_to_doc({"meta": {"name": "Tide", "fps": 24}})
    >>> apply_state(doc, {"meta": {"name": "Tide", "fps": 24.0}})
    False
    >>> apply_state(doc, {"meta": {"name": "Ebb", "fps": 24}}, origin="server")
    True
    """
    changed = False
    with doc.transaction(origin=origin):
        for name, kind in TOP_LEVEL.items():
            value = new_state.get(name)
            done = _sync_value(
                _root(doc, name), ({} if kind is Map else []) if value is None else value, (name,)
            )
            if done is None:
                raise TypeError(f"state[{name!r}] must be a {'dict' if kind is Map else 'list'}")
            changed |= done
    return changed


def _root(doc: Doc[Any], name: str) -> Map[Any] | Array[Any]:
    """The top-level type ``name``, created (or given its type, after an update) if need be."""
    root: Map[Any] | Array[Any] = doc.get(name, type=TOP_LEVEL[name])
    return root


def _to_shared(value: Any, path: tuple[str, ...]) -> Any:
    """``value`` as the prelim shared type (or plain value) that the document stores at ``path``."""
    if isinstance(value, dict):
        return Map({str(k): _to_shared(v, (*path, str(k))) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return Array([_to_shared(v, (*path, str(i))) for i, v in enumerate(value)])
    if isinstance(value, str) and is_text(path):
        return Text(value)
    return value


def _plain(value: Any) -> Any:
    return value.to_py() if isinstance(value, Map | Array | Text) else value


def _same(a: Any, b: Any) -> bool:
    """Equal as data: 30 == 30.0, but True != 1 and "1" != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == {str(k) for k in b} and all(_same(a[str(k)], v) for k, v in b.items())
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _sync_value(current: Any, new: Any, path: tuple[str, ...]) -> bool | None:
    """Update ``current`` in place to ``new``: True/False if it could, None if it must be replaced."""
    if isinstance(current, Map) and isinstance(new, dict):
        return _sync_map(current, new, path)
    if isinstance(current, Array) and isinstance(new, list | tuple):
        return _sync_array(current, list(new), path)
    if isinstance(current, Text) and isinstance(new, str):
        return _sync_text(current, new)
    return False if _same(_plain(current), new) else None


def _sync_map(ymap: Map[Any], new: dict[Any, Any], path: tuple[str, ...]) -> bool:
    wanted = {str(k): v for k, v in new.items()}
    changed = False
    for key in sorted(set(ymap.keys()) - wanted.keys()):
        del ymap[key]
        changed = True
    for key, value in wanted.items():
        sub = (*path, key)
        if key in ymap:
            done = _sync_value(ymap[key], value, sub)
            if done is not None:
                changed |= done
                continue
        ymap[key] = _to_shared(value, sub)
        changed = True
    return changed


def _sync_array(yarr: Array[Any], new: list[Any], path: tuple[str, ...]) -> bool:
    """Keep the common prefix and suffix; update same-id maps in place; replace the rest."""
    items = list(yarr)
    old = [_plain(v) for v in items]
    head, tail = _common_ends(old, new)
    old_end, new_end = len(old) - tail, len(new) - tail
    changed = False
    while head < old_end and head < new_end:
        current, value = items[head], new[head]
        if not (isinstance(current, Map) and isinstance(value, dict)) or old[head].get("id") != value.get(
            "id"
        ):
            break
        changed |= _sync_map(current, value, (*path, str(head)))
        head += 1
    if head < old_end:
        del yarr[head:old_end]
        changed = True
    for i in range(head, new_end):
        yarr.insert(i, _to_shared(new[i], (*path, str(i))))
        changed = True
    return changed


def _common_ends(old: Sequence[Any], new: Sequence[Any], eq: Any = _same) -> tuple[int, int]:
    """Lengths of the longest common prefix and (not overlapping it) suffix of two sequences."""
    limit = min(len(old), len(new))
    head = 0
    while head < limit and eq(old[head], new[head]):
        head += 1
    tail = 0
    while tail < limit - head and eq(old[-1 - tail], new[-1 - tail]):
        tail += 1
    return head, tail


# difflib is quadratic: above this len(old) * len(new), diff by lines first, then replace wholesale.
_DIFF_LIMIT = 1_000_000


def _text_edits(old: str, new: str, base: int = 0, by_line: bool = True) -> list[tuple[int, int, str]]:
    """``(start, end, replacement)`` edits, in order and in characters of ``old``, making ``new``."""
    head, tail = _common_ends(old, new, str.__eq__)
    old, new, base = old[head : len(old) - tail], new[head : len(new) - tail], base + head
    if len(old) * len(new) <= _DIFF_LIMIT:
        ops = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
        return [(base + i1, base + i2, new[j1:j2]) for tag, i1, i2, j1, j2 in ops if tag != "equal"]
    lines_old, lines_new = old.splitlines(keepends=True), new.splitlines(keepends=True)
    if not by_line or len(lines_old) * len(lines_new) > _DIFF_LIMIT:
        return [(base, base + len(old), new)]
    starts = [base]
    for line in lines_old:
        starts.append(starts[-1] + len(line))
    edits: list[tuple[int, int, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
        None, lines_old, lines_new, autojunk=False
    ).get_opcodes():
        if tag != "equal":
            edits += _text_edits("".join(lines_old[i1:i2]), "".join(lines_new[j1:j2]), starts[i1], False)
    return edits


def _sync_text(ytext: Text, new: str) -> bool:
    """Turn ``ytext`` into ``new`` by deletions and insertions, walked from the end.

    pycrdt indexes Text by UTF-8 bytes, so character offsets are converted first.
    """
    old = str(ytext)
    if old == new:
        return False
    spans: list[tuple[int, int, str]] = []
    done = offset = 0
    for start, end, text in _text_edits(old, new):
        offset += len(old[done:start].encode("utf-8"))
        size = len(old[start:end].encode("utf-8"))
        spans.append((offset, offset + size, text))
        offset, done = offset + size, end
    for start, end, text in reversed(spans):
        if end > start:
            del ytext[start:end]
        if text:
            ytext.insert(start, text)
    return True


# --- commit messages -------------------------------------------------------------------------

MAX_MESSAGE = 200
_SECTIONS = (
    ("scenes", "scene", "scenes", "title"),
    ("acts", "act", "acts", "name"),
    ("plot_points", "plot point", "plot points", "name"),
    ("beats", "beat", "beats", "name"),
    ("characters", "character", "characters", "name"),
)


def describe_changes(old_state: State, new_state: State) -> str:
    """A short commit message saying in words what changed from ``old_state`` to ``new_state``.

    >>> old = {"meta": {"name": "Tide"}}
    >>> describe_changes(old, {"meta": {"name": "Ebb"}})
    'Rename project to "Ebb"'
    >>> describe_changes(old, old)
    ''
    """
    old, new = normalize(old_state), normalize(new_state)
    clauses = _meta_clauses(_dict(old, "meta"), _dict(new, "meta"), _dict(new, "canvases"))
    clauses += _canvas_clauses(_dict(old, "canvases"), _dict(new, "canvases"))
    clauses += _story_clauses(_dict(old, "story"), _dict(new, "story"))
    chat = _by_id(_list(old, "chat")), _by_id(_list(new, "chat"))
    clauses += _collection("chat message", "chat messages", *chat, "")
    clauses += _collection("asset", "assets", _dict(old, "assets"), _dict(new, "assets"), "name")
    clauses += _collection("take", "takes", _dict(old, "takes"), _dict(new, "takes"), "")
    for key in sorted((set(old) | set(new)) - set(TOP_LEVEL)):
        if not _same(old.get(key), new.get(key)):
            clauses.append(f"edit {key}")
    return _join(clauses)


def _dict(parent: Any, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _list(parent: Any, key: str) -> list[Any]:
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, list) else []


def _n(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def _short(value: Any, limit: int = 30) -> str:
    """A value for a message: strings quoted and cut short, booleans as on/off."""
    if isinstance(value, bool) or value is None:
        return {True: "on", False: "off", None: "nothing"}[value]
    text = str(value) if len(str(value)) <= limit else str(value)[: limit - 1] + "…"
    return f'"{text}"' if isinstance(value, str) else text


def _diff_keys(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """Keys added, removed and changed, sorted (documents keep no key order; messages must)."""
    added = sorted(k for k in new if k not in old)
    removed = sorted(k for k in old if k not in new)
    changed = sorted(k for k in new if k in old and not _same(old[k], new[k]))
    return added, removed, changed


def _meta_clauses(old: dict[str, Any], new: dict[str, Any], canvases: dict[str, Any]) -> list[str]:
    added, removed, changed = _diff_keys(old, new)
    opened = new.get("open_canvas", "")
    words = {
        "name": f"rename project to {_short(new.get('name', ''))}",
        "description": "edit project description",
        "open_canvas": f"open canvas {_short(_dict(canvases, str(opened)).get('name', opened))}",
    }
    first = {key: i for i, key in enumerate(words)}
    keys = sorted(changed + added + removed, key=lambda k: (first.get(k, len(first)), k))
    return [words.get(key, f"edit project {key}") for key in keys]


def _node_label(node: dict[str, Any], node_id: str) -> str:
    params = _dict(node, "params")
    return str(params.get("label") or node.get("type") or node_id)


def _canvas_clauses(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    clauses: list[str] = []
    added, removed, changed = _diff_keys(old, new)
    clauses += [f"add canvas {_short(_dict(new, c).get('name', c))}" for c in added]
    clauses += [f"remove canvas {_short(_dict(old, c).get('name', c))}" for c in removed]
    reordered = False
    for cid in changed:
        before, after = _dict(old, cid), _dict(new, cid)
        name = str(after.get("name", cid))
        if not _same(before.get("name"), after.get("name")):
            clauses.append(f"rename canvas {_short(before.get('name', cid))} to {_short(name)}")
        reordered |= not _same(before.get("order"), after.get("order"))
        clauses += _node_clauses(_dict(before, "nodes"), _dict(after, "nodes"), f"on {name} canvas")
        clauses += _edge_clauses(before, after, f"on {name} canvas")
    if reordered:
        clauses.append("reorder canvases")
    return clauses


def _node_clauses(old: dict[str, Any], new: dict[str, Any], where: str) -> list[str]:
    added, removed, changed = _diff_keys(old, new)
    clauses = [
        f"{verb} {_n(len(ids), 'node', 'nodes')} {where}"
        for verb, ids in (("add", added), ("remove", removed))
        if ids
    ]
    moved = other = 0
    params: list[tuple[str, str, Any, bool]] = []  # (label, param, value or None, removed)
    for nid in changed:
        before, after = _dict(old, nid), _dict(new, nid)
        moved += any(not _same(before.get(k), after.get(k)) for k in ("x", "y"))
        rest = (set(before) | set(after)) - {"x", "y", "params"}
        other += any(not _same(before.get(k), after.get(k)) for k in rest)
        label = _node_label(after, nid)
        p_old, p_new = _dict(before, "params"), _dict(after, "params")
        p_added, p_removed, p_changed = _diff_keys(p_old, p_new)
        params += [(label, k, p_new[k], False) for k in p_changed + p_added]
        params += [(label, k, None, True) for k in p_removed]
    if moved:
        clauses.append(f"move {_n(moved, 'node', 'nodes')} {where}")
    if len(params) > 2:
        clauses.append(f"edit {len(params)} parameters {where}")
    for label, key, value, gone in params if len(params) <= 2 else []:
        if gone:
            clauses.append(f"clear {label} {key}")
        elif key in ("text", "prompt", "negative") or (isinstance(value, str) and len(value) > 30):
            clauses.append(f"edit {label} {key}")
        else:
            clauses.append(f"set {label} {key} to {_short(value)}")
    if other:
        clauses.append(f"edit {_n(other, 'node', 'nodes')} {where}")
    return clauses


def _edge_clauses(old_canvas: dict[str, Any], new_canvas: dict[str, Any], where: str) -> list[str]:
    old, new = _dict(old_canvas, "edges"), _dict(new_canvas, "edges")
    added, removed, changed = _diff_keys(old, new)
    clauses: list[str] = []
    for verb, ids, canvas, edges in (
        ("connect", added, new_canvas, new),
        ("disconnect", removed, old_canvas, old),
    ):
        if len(ids) == 1:
            edge, nodes = _dict(edges, ids[0]), _dict(canvas, "nodes")
            ends = [str(edge.get(k, "")) for k in ("source", "target")]
            src, tgt = (_node_label(_dict(nodes, e), e) for e in ends)
            clauses.append(f"{verb} {src} to {tgt} {where}")
        elif ids:
            clauses.append(f"{verb} {len(ids)} edges {where}")
    if changed:
        clauses.append(f"rewire {_n(len(changed), 'edge', 'edges')} {where}")
    return clauses


def _collection(
    singular: str, plural: str, old: dict[str, Any], new: dict[str, Any], name_key: str
) -> list[str]:
    """Clauses for a map of items by id: added, removed, edited, and reordered."""
    added, removed, changed = _diff_keys(old, new)

    def one(verb: str, item_id: str, items: dict[str, Any]) -> str:
        name = _dict(items, item_id).get(name_key) if name_key else None
        return f"{verb} {singular} {_short(name)}" if name else f"{verb} 1 {singular}"

    def only_order(key: str) -> bool:
        a, b = _dict(old, key), _dict(new, key)
        return _same(
            {k: v for k, v in a.items() if k != "order"}, {k: v for k, v in b.items() if k != "order"}
        )

    edited = [k for k in changed if not only_order(k)]
    clauses: list[str] = []
    for verb, ids, items in (("add", added, new), ("remove", removed, old), ("edit", edited, new)):
        if len(ids) == 1:
            clauses.append(one(verb, ids[0], items))
        elif ids:
            clauses.append(f"{verb} {len(ids)} {plural}")
    if len(edited) < len(changed):
        clauses.append(f"reorder {plural}")
    return clauses


def _story_clauses(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    words = {
        "logline": "edit logline",
        "template": f"switch story template to {_short(new.get('template'))}",
        "running_time_min": f"set running time to {_short(new.get('running_time_min'))} min",
    }
    sections = {section[0] for section in _SECTIONS}
    changed = [
        k for k in sorted(set(old) | set(new)) if k not in sections and not _same(old.get(k), new.get(k))
    ]
    clauses = [words.get(key, f"edit story {key}") for key in changed]
    for section, singular, plural, name_key in _SECTIONS:
        clauses += _collection(singular, plural, _dict(old, section), _dict(new, section), name_key)
    return clauses


def _by_id(items: list[Any]) -> dict[str, Any]:
    """Chat messages keyed by their ``id`` (or position)."""
    return {str(m.get("id", i)) if isinstance(m, dict) else str(i): m for i, m in enumerate(items)}


def _join(clauses: list[str]) -> str:
    """Clauses joined with "; ", capped near :data:`MAX_MESSAGE` with a count of the rest."""
    message = "; ".join(clauses)
    if len(message) > MAX_MESSAGE:
        kept: list[str] = []
        for clause in clauses:
            if len("; ".join([*kept, clause])) + len("; … and 999 more changes") > MAX_MESSAGE:
                break
            kept.append(clause)
        if not kept:  # the first clause alone is too long: shorten it
            kept.append(clauses[0][: MAX_MESSAGE - 30] + "…")
        more = len(clauses) - len(kept)
        message = "; ".join(kept) + (f"; … and {more} more changes" if more else "")
    return message[:1].upper() + message[1:]


def set_meta(doc: Doc[Any], changes: dict[str, Any]) -> bool:
    """Set fields of ``meta`` (a rename, a new description) with the smallest edit.

    >>> set_meta(doc, {"name": "The Last Tide"})  # doctest: +SKIP
    True
    """
    state = doc_to_state(doc)
    state["meta"] = {**state["meta"], **changes}
    return apply_state(doc, state)


def set_path(doc: Doc[Any], path: list[str], value: Any) -> bool:
    """Set the value at ``path`` (``["canvases", "main", "nodes", "n1", "x"]``), creating missing maps.

    Used to restore a value that lost a conflict. Returns whether the doc changed.
    """
    if len(path) < 2 or path[0] not in TOP_LEVEL or TOP_LEVEL[path[0]] is not Map:
        raise ValueError(f"cannot set {'.'.join(path)}: only values inside the map types can be set")
    with doc.transaction():
        target: Any = _root(doc, path[0])
        for key in path[1:-1]:
            child = target.get(key) if isinstance(target, Map) else None
            if not isinstance(child, Map):
                child = Map()
                target[key] = child
                child = target[key]
            target = child
        current = target.get(path[-1])
        if _same(_plain(current), value):
            return False
        target[path[-1]] = _to_shared(value, tuple(path))
    return True
