"""Project names and the folder names made from them.

A project's display name is free text; its folder under ``Projects/`` is that name made safe for
every filesystem people keep projects on: unicode kept, separators, control characters and
characters Windows refuses replaced, never ``.`` or ``..``, never a reserved device name, and
at most ``MAX_FOLDER_BYTES`` of UTF-8.

>>> folder_name("My Film")
'My_Film'
>>> folder_name("Ébauche: «Nuit» ")
'Ébauche_«Nuit»'
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_CHARS = 120
MAX_FOLDER_BYTES = 80

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*\s]+')
_REPEATS = re.compile(r"_{2,}")
_WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


class InvalidName(ValueError):
    """A project name a person must change; the message says how."""


def clean_name(raw: object) -> str:
    """Validate a project's display name and return it trimmed.

    Raises :class:`InvalidName` with a message a person can act on.
    """
    if not isinstance(raw, str):
        raise InvalidName("The project name must be text.")
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise InvalidName("The project name is empty: give the project a name.")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidName(f"The project name is {len(name)} characters long; the limit is {MAX_NAME_CHARS}.")
    if "/" in name or "\\" in name:
        raise InvalidName("The project name may not contain '/' or '\\' (they would make it a path).")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        raise InvalidName("The project name contains control characters.")
    if set(name) <= {"."}:
        raise InvalidName("The project name may not be only dots.")
    return name


def folder_name(name: str) -> str:
    """Return a safe folder name for the project name ``name`` (see module docstring)."""
    folder = _UNSAFE.sub("_", unicodedata.normalize("NFC", name))
    folder = _REPEATS.sub("_", folder).strip("._ ")
    folder = _truncate_utf8(folder, MAX_FOLDER_BYTES).rstrip("._ ")
    if not folder:
        folder = "Untitled"
    if folder.split(".")[0].upper() in _WINDOWS_RESERVED:
        folder = f"{folder}_project"
    return folder


def with_suffix(folder: str, n: int) -> str:
    """The ``n``-th alternative for a folder name already taken: ``My_Film_2``, ``My_Film_3``…"""
    suffix = f"_{n}"
    return _truncate_utf8(folder, MAX_FOLDER_BYTES - len(suffix)).rstrip("._ ") + suffix


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")
