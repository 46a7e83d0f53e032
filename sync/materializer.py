"""The materializer: a project's document written into its Git repository as plain files.

It writes the deterministic JSON files of the state (``sync/model.py``), removes the files of
canvases that no longer exist, and commits with the people whose updates the commit holds:
the one with the most updates as author, the others as ``Co-authored-by:`` trailers. The
message says what changed in words. Nothing is committed when nothing changed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sync import repo
from sync.docmodel import describe_changes
from sync.jsonfile import normalize, write_atomic
from sync.model import CANVAS_DIR, State, read_state, state_to_files
from sync.workspace import ProjectLocks


@dataclass(frozen=True)
class Committed:
    project_id: str
    sha: str
    message: str
    authors: list[repo.Author]
    state: State


@dataclass
class Materializer:
    """``authors(user_ids)`` names people for commits; ``on_commit`` hears of each commit."""

    authors: Callable[[list[str]], dict[str, repo.Author]]
    on_commit: Callable[[Committed], None] = lambda committed: None
    # Hashes of the files this process wrote, so the file watcher can ignore its own writes.
    written: dict[Path, str] = field(default_factory=dict)
    # Shared with everything else that writes a project's repository (trash, bundles).
    locks: ProjectLocks = field(default_factory=ProjectLocks)

    def write(
        self, project_id: str, root: Path, state: State, user_ids: list[str], note: str | None = None
    ) -> str | None:
        """Write ``state`` into ``root`` and commit it; return the sha, or None if nothing changed."""
        with self.locks(project_id):
            # Compared with what HEAD holds (not the working tree): edits someone made to the files
            # by hand are in the doc by now and get committed here, attributed to "filesystem".
            old = _state_at_head(root)
            files = state_to_files(state)
            if old is not None and normalize(old) == normalize(state) and not _files_differ(root, files):
                return None
            for rel, data in files.items():
                path = root / rel
                if not path.exists() or path.read_bytes() != data:
                    self.written[path] = hashlib.sha256(data).hexdigest()
                    write_atomic(path, data)
            canvas_dir = root / CANVAS_DIR
            if canvas_dir.is_dir():
                for path in canvas_dir.glob("*.json"):
                    if f"{CANVAS_DIR}/{path.name}" not in files:
                        path.unlink()
            counts = Counter(user_ids)
            people = self.authors(list(counts))
            ordered = [people[u] for u, _ in counts.most_common() if u in people]
            if not ordered:
                ordered = [repo.Author("studio", "studio@studio.invalid")]
            message = describe_changes(old, state) if old else "Rewrite project files from the live document"
            if note:
                message = f"{note}: {message}" if message else note
            sha = repo.commit_all(
                root, message or "Update project", ordered[0], _unique(ordered[1:], ordered[0])
            )
            if sha is None:
                return None
        self.on_commit(Committed(project_id, sha, message, ordered, state))
        return sha


def _state_at_head(root: Path) -> State | None:
    """What the last commit holds; None when there is no commit (or it is unreadable)."""
    try:
        return read_state(repo.reader_at(root, "HEAD"))
    except (KeyError, ValueError, OSError):
        return None


def _files_differ(root: Path, files: dict[str, bytes]) -> bool:
    for rel, data in files.items():
        path = root / rel
        if not path.is_file() or path.read_bytes() != data:
            return True
    return False


def _unique(authors: list[repo.Author], first: repo.Author) -> list[repo.Author]:
    seen = {first}
    out = []
    for a in authors:
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out
