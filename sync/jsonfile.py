"""Deterministic JSON: the one way the studio writes JSON to disk.

Sorted keys, 2-space indent, a newline at the end, and integral floats written as integers
(pycrdt hands every number back as a float; people wrote ``30``, so the file says ``30``).

>>> dumps({"b": 30.0, "a": [1.5]})
'{\\n  "a": [\\n    1.5\\n  ],\\n  "b": 30\\n}\\n'
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import msgspec


def normalize(value: Any) -> Any:
    """Return ``value`` with integral floats turned into ints, recursively."""
    return _normalized(value, [])


def _normalized(value: Any, odd: list[Any]) -> Any:
    """:func:`normalize`, noting in ``odd`` every value msgspec would write differently from
    :mod:`json`: ints beyond 64 bits, floats Python writes with an exponent (msgspec writes
    ``1e20`` where :mod:`json` writes ``1e+20``) or not at all (NaN), and types neither knows.
    One walk for both: they were a fifth of the time of writing a project's files."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {str(k): _normalized(v, odd) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalized(v, odd) for v in value]
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        if not (value == 0 or 1e-4 <= abs(value) < 1e16):  # NaN and infinities too
            odd.append(value)
        return value
    if isinstance(value, bool) or value is None:
        return value
    if not isinstance(value, int) or not -(2**63) <= value < 2**64:
        odd.append(value)  # anything else: json decides (and refuses what it cannot write)
    return value


def dumps(value: Any) -> str:
    """Serialize ``value`` deterministically (see module docstring).

    msgspec writes the same text as ``json.dumps(indent=2, sort_keys=True, ensure_ascii=False)``
    three times faster (a project is six files, written on every commit); values with numbers it
    writes differently go through :mod:`json`, so a file's bytes never depend on which was used."""
    odd: list[Any] = []
    plain = _normalized(value, odd)
    if not odd:
        return msgspec.json.format(msgspec.json.encode(plain, order="sorted"), indent=2).decode() + "\n"
    return json.dumps(plain, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as deterministic JSON to ``path`` atomically."""
    write_atomic(path, dumps(value).encode("utf-8"))


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json` (or by a person)."""
    return json.loads(path.read_text(encoding="utf-8"))
