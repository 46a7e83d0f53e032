"""A project's Git repository: create, commit, read history, bundle.

Commits are built with pygit2 (blobs → index → tree → commit) from files already written to the
working tree, so the real ``git`` CLI finds the repository clean afterwards. ``git bundle`` has
no libgit2 equivalent, so bundles use the ``git`` CLI, which the studio requires anyway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pygit2

from sync import gitwrite, lfs
from sync.fastfs import write_file

DEFAULT_BRANCH = "main"


@dataclass(frozen=True)
class Author:
    """Who a commit is attributed to."""

    name: str
    email: str

    def signature(self, when: datetime | None = None) -> pygit2.Signature:
        moment = when or datetime.now(UTC)
        return pygit2.Signature(self.name, self.email, int(moment.timestamp()), 0)


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str
    author: Author
    time: str


def init(root: Path) -> pygit2.Repository:
    """Initialise a repository in ``root`` with ``main`` as its branch."""
    repo = pygit2.init_repository(str(root), initial_head=DEFAULT_BRANCH)
    lfs.configure(repo)
    return repo


class Skeleton:
    """The ``.git`` of a new repository, written directly.

    ``git_repository_init`` probes the file system (file modes, symlinks, case) and writes hook
    samples, a description and an exclude file each time: a quarter of a project creation. A
    skeleton runs it once on ``probe`` (a folder on the same file system as the new
    repositories), keeps the config it wrote, then lays out each new ``.git`` with just what
    Git needs: HEAD, config, objects/pack/, refs/heads/. Git makes ``objects/info``,
    ``refs/tags`` and ``logs/`` itself when it first needs them.
    """

    def __init__(self, probe: Path | None = None, config: bytes = b"") -> None:
        """Probe with ``probe``, or take the ``config`` a skeleton probed elsewhere (another process)."""
        self.config = config
        if probe is not None:
            try:
                repository = init(probe)
                self.config = (Path(repository.path) / "config").read_bytes()
            finally:
                shutil.rmtree(probe, ignore_errors=True)

    def init(self, root: Path) -> Path:
        """Lay out ``root/.git``; returns that folder."""
        git = root / ".git"
        for folder in ("", "/objects", "/objects/pack", "/refs", "/refs/heads"):  # parents first
            os.mkdir(f"{git}{folder}")
        write_file(git / "HEAD", f"ref: refs/heads/{DEFAULT_BRANCH}\n".encode())
        write_file(git / "config", self.config)
        return git


def create(
    root: Path, files: dict[str, bytes], message: str, author: Author, skeleton: Skeleton | None = None
) -> str:
    """Initialise a repository in ``root`` whose first commit holds ``files`` (already written
    there, POSIX path → content); returns the commit's sha.

    The tree is built from the bytes in hand: staging the working tree instead costs an
    attribute and ignore lookup per file. The objects go to disk as one pack rather than as some
    thirty loose object files, written by :mod:`sync.gitwrite`; the index gets the same
    entries, so ``git status`` is clean.
    """
    git = skeleton.init(root) if skeleton is not None else Path(init(root).path)
    blobs: dict[str, bytes] = {}
    objects: list[gitwrite.Obj] = []
    for rel, data in sorted(files.items()):
        if lfs.is_lfs_path(rel):
            oid, size = lfs.store(git, root / rel)
            data = lfs.pointer(oid, size)
        made = gitwrite.blob(data)
        objects.append(made)
        blobs[rel] = made[2]
    tree, made_trees = gitwrite.trees(blobs)
    sig = author.signature()  # libgit2 checks and trims the name and email
    first = gitwrite.commit(tree, gitwrite.signature_line(sig.name, sig.email, sig.time, sig.offset),
                            message.rstrip() + "\n")  # fmt: skip
    gitwrite.write_pack(git / "objects" / "pack", [first, *made_trees, *objects])
    gitwrite.write_index(git / "index", blobs)
    sha = first[2].hex()
    # HEAD points at the branch. Written directly: through libgit2 the first ref also starts a
    # reflog (three folders, two files), a third of the repository's own file operations.
    write_file(git / "refs" / "heads" / DEFAULT_BRANCH, f"{sha}\n".encode())
    return sha


def commit_all(
    root: Path, message: str, author: Author, co_authors: list[Author] | None = None
) -> str | None:
    """Stage every file in the working tree and commit it; return the new sha, or None if nothing changed."""
    repo = pygit2.Repository(str(root))
    index = repo.index
    index.add_all()
    index.write()
    lfs.swap_for_pointers(repo, root)  # media as LFS pointers (pygit2 runs no clean filter)
    tree = index.write_tree()
    parents: list[pygit2.Oid] = []
    if not repo.head_is_unborn:
        head = repo.head.peel(pygit2.Commit)
        if head.tree_id == tree:
            return None
        parents = [head.id]
    trailers = "".join(f"\nCo-authored-by: {a.name} <{a.email}>" for a in co_authors or [])
    full = message.rstrip() + ("\n" + trailers if trailers else "") + "\n"
    sig = author.signature()
    oid = repo.create_commit("HEAD", sig, sig, full, tree, parents)
    return str(oid)


def history(root: Path, limit: int = 200) -> list[Commit]:
    """Newest-first commits of the repository at ``root``."""
    repo = pygit2.Repository(str(root))
    if repo.head_is_unborn:
        return []
    out: list[Commit] = []
    # Topological first: commits made within one second share a timestamp.
    for commit in repo.walk(repo.head.target, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME):
        out.append(
            Commit(
                sha=str(commit.id),
                message=commit.message.strip(),
                author=Author(commit.author.name, commit.author.email),
                time=datetime.fromtimestamp(commit.commit_time, UTC).isoformat(),
            )
        )
        if len(out) >= limit:
            break
    return out


def reader_at(root: Path, sha: str) -> Callable[[str], bytes | None]:
    """A reader of the files of commit ``sha`` (``reader("project.json")`` → bytes or None).

    Raises ``KeyError`` when the repository has no such commit.
    """
    repository = pygit2.Repository(str(root))
    try:
        commit = repository.revparse_single(sha).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise KeyError(sha) from None
    tree = commit.tree

    def read(rel: str) -> bytes | None:
        try:
            entry = tree[rel]
        except KeyError:
            return None
        blob = repository[entry.id]
        return blob.data if isinstance(blob, pygit2.Blob) else None

    return read


def bundle(root: Path, dest: Path) -> None:
    """Write a ``git bundle`` of every ref of the repository at ``root`` to ``dest``."""
    _git(root, "bundle", "create", str(dest), "--all")


def clone_bundle(bundle_path: Path, dest: Path) -> None:
    """Clone a bundle into ``dest``; raises ``ValueError`` if it is not a valid bundle."""
    check = subprocess.run(
        # `verify` needs a repository around it; `list-heads` checks the header and refs anywhere.
        ["git", "bundle", "list-heads", str(bundle_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise ValueError("The file is not a valid git bundle.")
    if not check.stdout.strip():
        raise ValueError("The file is not a valid git bundle: it holds no commits.")
    # Without the LFS filter: a bundle carries no LFS objects, and git-lfs would try to download
    # them from the bundle "remote" and fail. Media files come out as pointers, for
    # ``lfs.check_out_media`` to fill from objects that came beside the bundle.
    no_lfs = ["-c", "filter.lfs.smudge=", "-c", "filter.lfs.process=", "-c", "filter.lfs.required=false"]
    result = subprocess.run(
        ["git", *no_lfs, "clone", "--quiet", str(bundle_path), str(dest)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_LFS_SKIP_SMUDGE": "1"},
    )
    if result.returncode != 0:
        raise ValueError("The git bundle could not be cloned: " + result.stderr.strip()[:300])
    # A bundle's origin is a file that will not exist later; a clone of it keeps no remote.
    _git(dest, "remote", "remove", "origin")


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    return result.stdout
