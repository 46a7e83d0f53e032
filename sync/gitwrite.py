"""A new repository's first commit written straight to disk: one pack, its index, the index file.

Making a project writes a dozen small objects. Through libgit2 that is an object database with
its pack folder scanned again on every write, a pack builder that searches for deltas and then
re-reads its own pack to index it: about 1 ms, half of building a project. The formats are
small and fixed (``gitformat-pack``, ``gitformat-index``), so this module writes them directly;
the result is what Git itself would write, which the tests check object by object against
libgit2 and with ``git fsck --strict`` and ``git verify-pack``.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

from sync.fastfs import write_file

COMMIT, TREE, BLOB = 1, 2, 3
_NAMES = {COMMIT: b"commit", TREE: b"tree", BLOB: b"blob"}
FILE_MODE = 0o100644

# One object: (type, content, sha-1 as 20 bytes).
Obj = tuple[int, bytes, bytes]


def object_id(kind: int, data: bytes) -> bytes:
    """The sha-1 Git names an object of ``kind`` with ``data`` by."""
    return hashlib.sha1(b"%s %d\0" % (_NAMES[kind], len(data)) + data, usedforsecurity=False).digest()


def blob(data: bytes) -> Obj:
    return BLOB, data, object_id(BLOB, data)


def trees(files: dict[str, bytes]) -> tuple[bytes, list[Obj]]:
    """The trees holding ``files`` (POSIX path → blob id); returns the root tree's id and every tree."""
    root: dict[str, Any] = {}
    for path, oid in files.items():
        *folders, name = path.split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
        node[name] = oid
    made: list[Obj] = []

    def write(node: dict[str, Any]) -> bytes:
        entries = []
        for name, value in node.items():
            raw = name.encode()
            if isinstance(value, dict):  # Git orders a folder as if its name ended in "/"
                entries.append((raw + b"/", b"40000 " + raw + b"\0" + write(value)))
            else:
                entries.append((raw, b"100644 " + raw + b"\0" + value))
        entries.sort(key=lambda entry: entry[0])
        data = b"".join(entry for _, entry in entries)
        oid = object_id(TREE, data)
        made.append((TREE, data, oid))
        return oid

    return write(root), made


def commit(tree: bytes, author: bytes, message: str) -> Obj:
    """A parentless commit of ``tree``; ``author`` is ``Name <email> seconds +hhmm``, used as
    committer too, and ``message`` ends with a newline."""
    data = b"tree %s\nauthor %s\ncommitter %s\n\n%s" % (tree.hex().encode(), author, author, message.encode())
    return COMMIT, data, object_id(COMMIT, data)


def signature_line(name: str, email: str, seconds: int, offset_minutes: int) -> bytes:
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{name} <{email}> {seconds} {sign}{hours:02d}{minutes:02d}".encode()


def deflate(data: bytes) -> bytes:
    """``data`` compressed as Git stores it (zlib, level 6), with a window no larger than the
    data needs: ``zlib.compress`` sets up its full 32 KiB window and tables for every call, which
    cost 40 µs for each of a new project's small objects, ten times the compressing itself. The
    bytes inflate the same way whatever the window (Git reads any)."""
    bits = min(15, max(9, (len(data) - 1).bit_length()))
    packer = zlib.compressobj(6, zlib.DEFLATED, bits, 4)
    return packer.compress(data) + packer.flush()


def write_pack(pack_dir: Path, objects: list[Obj]) -> str:
    """Write ``objects`` as ``pack-<sha>.pack`` and its version 2 ``.idx`` in ``pack_dir``, each
    object once (the same content twice, such as two empty files or two folders holding only an
    empty file, is one object); returns the pack's sha."""
    objects = list({oid: (kind, data, oid) for kind, data, oid in objects}.values())
    parts = [b"PACK" + struct.pack(">II", 2, len(objects))]
    where: dict[bytes, tuple[int, int]] = {}  # id → (offset, crc32 of the packed entry)
    offset = 12
    for kind, data, oid in objects:
        size = len(data)
        byte = (kind << 4) | (size & 0x0F)
        size >>= 4
        header = bytearray()
        while size:
            header.append(byte | 0x80)
            byte = size & 0x7F
            size >>= 7
        header.append(byte)
        entry = bytes(header) + deflate(data)
        where[oid] = (offset, zlib.crc32(entry))
        offset += len(entry)
        parts.append(entry)
    pack = b"".join(parts)
    checksum = hashlib.sha1(pack, usedforsecurity=False).digest()
    ids = sorted(where)
    fanout = [0] * 256
    for oid in ids:
        fanout[oid[0]] += 1
    for i in range(1, 256):
        fanout[i] += fanout[i - 1]
    idx = b"".join([
        b"\377tOc" + struct.pack(">I", 2),
        struct.pack(">256I", *fanout),
        *ids,
        struct.pack(f">{len(ids)}I", *(where[oid][1] for oid in ids)),
        struct.pack(f">{len(ids)}I", *(where[oid][0] for oid in ids)),
        checksum,
    ])  # fmt: skip
    idx += hashlib.sha1(idx, usedforsecurity=False).digest()
    name = f"pack-{checksum.hex()}"
    # The index goes last: Git looks for packs by their .idx, so it never sees half a pack.
    write_file(pack_dir / f"{name}.pack", pack + checksum)
    write_file(pack_dir / f"{name}.idx", idx)
    return checksum.hex()


def write_index(path: Path, files: dict[str, bytes]) -> None:
    """Write the index file (version 2) listing ``files`` (POSIX path → blob id) as regular files.

    The entries carry no stat data, as libgit2 writes entries added by id: ``git status`` hashes
    each file once, finds it unchanged and stays clean."""
    entries = []
    for rel in sorted(files, key=str.encode):
        raw = rel.encode()
        entry = struct.pack(">10I", 0, 0, 0, 0, 0, 0, FILE_MODE, 0, 0, 0) + files[rel]
        entry += struct.pack(">H", min(len(raw), 0xFFF)) + raw
        entries.append(entry + b"\0" * (8 - len(entry) % 8))  # one to eight NULs
    body = b"DIRC" + struct.pack(">II", 2, len(entries)) + b"".join(entries)
    write_file(path, body + hashlib.sha1(body, usedforsecurity=False).digest())
