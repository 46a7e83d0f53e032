"""The first commit written by sync.gitwrite is the one Git and libgit2 would write."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pygit2
import pytest

from sync import repo
from sync.workspace import scaffold

WHEN = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
FILES = {
    ".gitignore": b"05_Cache/\n",
    "project.json": b'{\n  "name": "\xc3\x89t\xc3\xa9"\n}\n',
    "a/b/c.json": b"{}\n",
    "a/b.txt": b"x",  # a file that sorts before the folder a/b/ ("b.txt" < "b/")
    "a-b/x.json": b"[]\n",  # "a-b" sorts before "a/" in a tree
    "a/keep/.gitkeep": b"",
    "z/keep/.gitkeep": b"",  # the same empty tree twice: one object
    "Ü ni code/ñ.json": b"1\n",
}


class FixedAuthor(repo.Author):
    def signature(self, when: datetime | None = None) -> pygit2.Signature:
        return super().signature(WHEN)


def libgit2_commit(root: Path, files: dict[str, bytes], author: repo.Author, message: str) -> str:
    """The same commit made the usual way: libgit2 writes the blobs, the index, the tree."""
    repository = pygit2.init_repository(str(root))
    index = repository.index
    for rel, data in files.items():
        index.add(pygit2.IndexEntry(rel, repository.create_blob(data), pygit2.enums.FileMode.BLOB))
    sig = author.signature()
    return str(repository.create_commit("HEAD", sig, sig, message, index.write_tree(), []))


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


@pytest.mark.parametrize("name", ["Ada Lovelace", "  Trimmed Name  ", "Zoë Ünïcode"])
def test_the_commit_id_is_libgit2s_and_git_finds_the_repository_whole(tmp_path: Path, name: str) -> None:
    author = FixedAuthor(name, "ada@example.org")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    write_tree(ours, FILES)
    sha = repo.create(ours, FILES, "Create project Été\n\nwith a body", author)
    expected = libgit2_commit(theirs, FILES, author, "Create project Été\n\nwith a body\n")
    assert sha == expected

    def git(*args: str, where: Path = ours) -> str:
        done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True, check=True)
        return done.stdout

    git("fsck", "--strict", "--full")
    # The pack holds every object of the commit, each once (the two empty folders share a tree).
    pack = next((ours / ".git" / "objects" / "pack").glob("*.idx"))
    listed = [line.split() for line in git("verify-pack", "-v", str(pack)).splitlines()]
    packed = {parts[0] for parts in listed if len(parts) > 2 and parts[1] in ("commit", "tree", "blob")}
    reachable = {line.split()[0] for line in git("rev-list", "--objects", "--all", where=theirs).splitlines()}
    assert packed == reachable
    assert len(packed) == 15  # 7 blobs, 7 trees, the commit
    assert git("status", "--porcelain") == ""
    assert git("rev-parse", "HEAD").strip() == sha
    assert sorted(git("ls-files", "-z").split("\0")[:-1]) == sorted(FILES)
    # and libgit2 reads it back: every file's bytes
    commit = pygit2.Repository(str(ours)).revparse_single("HEAD")
    assert isinstance(commit, pygit2.Commit)
    for rel, data in FILES.items():
        assert commit.tree[rel].data == data


def test_a_project_made_the_new_way_equals_the_old_way(tmp_path: Path) -> None:
    from sync.model import apply_template, empty_state
    from sync.templates import get_template

    tmpl = get_template("save-the-cat")
    state = apply_template(
        empty_state(uuid="00000000-0000-4000-8000-000000000042", name="Cat", template=tmpl["id"],
                    created="2026-11-26T06:00:00Z", description="A pilot"),
        tmpl,
    )  # fmt: skip
    author = FixedAuthor("Bea", "bea@example.org")
    ours = tmp_path / "ours"
    files = scaffold(ours, state)
    sha = repo.create(ours, files, "Create project Cat", author)
    assert sha == libgit2_commit(tmp_path / "theirs", files, author, "Create project Cat\n")


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 511, 512, 513, 4096, 32768, 32769, 200_000])
def test_objects_are_deflated_so_that_zlib_and_git_read_them_back(tmp_path: Path, size: int) -> None:
    """The pack's objects use a window fitted to their size: whatever the size, the stream
    inflates to the same bytes, and Git reads a repository holding such a file."""
    import os
    import zlib

    from sync.gitwrite import deflate

    data = (os.urandom(size // 2) + b"scene " * (size // 12))[:size]
    assert zlib.decompress(deflate(data)) == data
    root = tmp_path / "p"
    root.mkdir()
    files = {"04_Project_Files/blob.bin": data}
    (root / "04_Project_Files").mkdir()
    (root / "04_Project_Files" / "blob.bin").write_bytes(data)
    repo.create(root, files, "One file", repo.Author("Ana", "ana@example.org"))
    shown = subprocess.run(
        ["git", "-C", str(root), "show", "HEAD:04_Project_Files/blob.bin"], capture_output=True, check=True
    )
    assert shown.stdout == data
    subprocess.run(["git", "-C", str(root), "fsck", "--strict", "--full"], capture_output=True, check=True)


def test_write_file_replaces_what_was_there(tmp_path: Path) -> None:
    from sync.fastfs import write_file

    target = tmp_path / "f.json"
    target.write_bytes(b"a much longer text than the next one")
    write_file(target, b"short")
    assert target.read_bytes() == b"short"
    write_file(str(tmp_path / "new"), b"")
    assert (tmp_path / "new").read_bytes() == b""
