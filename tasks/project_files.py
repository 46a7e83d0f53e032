"""What a task may read of its project, whichever machine it runs on.

A task kind never opens the project folder itself: it asks its :class:`ProjectFiles` for the
project's document, for one file, for the whole tree (an export) or for a git bundle. The
server's own workers use :class:`LocalProject` over the project's working tree; ``studio
worker`` processes use ``tasks.remote.RemoteProject``, which asks the server's worker API for
the same things, so a worker on another machine needs no shared disk.

The tree travels as a plain tar stream (:func:`tar_stream` on the server, :func:`read_tar` on
the worker), one file after the other, so an export of a big project never waits for a whole
archive to be built before the first byte moves.

>>> files = LocalProject(Path("Projects/My_Film"))  # doctest: +SKIP
>>> files.file("01_Assets/ref.png")  # doctest: +SKIP
PosixPath('Projects/My_Film/01_Assets/ref.png')
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from sync import repo
from sync.model import files_to_state
from sync.workspace import tree_files

BLOCK = tarfile.BLOCKSIZE  # 512
CHUNK = 1 << 20


@dataclass
class Tree:
    """The files of a project an export holds: ``count`` of them, then each as (relative POSIX
    path, readable binary file), in order; read each one whole before taking the next."""

    count: int
    entries: Iterator[tuple[str, IO[bytes]]]


class ProjectFiles(Protocol):
    """What a running task reads of its project (see the module docstring)."""

    @property
    def name(self) -> str:
        """The project's folder name (the top folder of a zip export)."""
        ...

    def state(self) -> dict[str, Any]:
        """The project's document as plain data (``meta``, ``story``, ``takes`` …)."""
        ...

    def file(self, rel: str) -> Path | None:
        """A local path to read the project file ``rel`` from; None when there is no such file."""
        ...

    def tree(self) -> Tree:
        """Every file an export holds (no ``.git``, cache or exports)."""
        ...

    def bundle(self, dest: Path) -> None:
        """Write a git bundle of the project's repository (every ref) to ``dest``."""
        ...

    def close(self) -> None:
        """Forget whatever was fetched for the task (temporary copies)."""
        ...


def safe_rel(rel: str) -> str | None:
    """``rel`` as a clean relative POSIX path inside a project, or None when it leads outside it
    or into ``.git``."""
    path = PurePosixPath(rel.replace("\\", "/"))
    if path.is_absolute() or not path.parts or ".." in path.parts or path.parts[0] == ".git":
        return None
    return path.as_posix()


class LocalProject:
    """:class:`ProjectFiles` over a working tree on this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def name(self) -> str:
        return self.root.name

    def state(self) -> dict[str, Any]:
        return dict(files_to_state(self.root))

    def file(self, rel: str) -> Path | None:
        clean = safe_rel(rel)
        if clean is None:
            return None
        base = self.root.resolve()
        path = (base / clean).resolve()
        return path if path.is_relative_to(base) and path.is_file() else None

    def tree(self) -> Tree:
        files = tree_files(self.root)

        def entries() -> Iterator[tuple[str, IO[bytes]]]:
            for path in files:
                with open(path, "rb") as fh:
                    yield path.relative_to(self.root).as_posix(), fh

        return Tree(len(files), entries())

    def bundle(self, dest: Path) -> None:
        repo.bundle(self.root, dest)

    def close(self) -> None:
        return None


def tar_stream(root: Path, files: Iterable[Path]) -> Iterator[bytes]:
    """A POSIX tar of ``files`` (under ``root``, named relative to it), in chunks of at most 1 MiB,
    each file read as it is sent. A file that vanished meanwhile is left out."""
    for path in files:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below, after the header is sent
        except OSError:
            continue
        with fh:
            size = os.fstat(fh.fileno()).st_size
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size, info.mode, info.mtime = size, 0o644, int(os.fstat(fh.fileno()).st_mtime)
            yield info.tobuf(format=tarfile.PAX_FORMAT)
            left = size
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:  # shrank while being sent: keep the archive well formed
                    chunk = b"\0" * min(CHUNK, left)
                left -= len(chunk)
                yield chunk
            if size % BLOCK:
                yield b"\0" * (BLOCK - size % BLOCK)
    yield b"\0" * (2 * BLOCK)


class ChunkReader:
    """A read-only binary file over an iterator of byte chunks (an HTTP body as it arrives)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def read_tar(chunks: Iterator[bytes]) -> Iterator[tuple[str, IO[bytes]]]:
    """The files of a tar stream (see :func:`tar_stream`) as (name, file), one after the other."""
    with tarfile.open(fileobj=ChunkReader(chunks), mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            clean = safe_rel(member.name)
            extracted = tar.extractfile(member) if member.isfile() and clean else None
            if extracted is not None and clean is not None:
                yield clean, extracted
