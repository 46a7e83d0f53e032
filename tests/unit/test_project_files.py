"""What a task reads of its project: the tree as a tar stream (server) read back file by file
(worker), and paths that never leave the project."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from tasks.project_files import LocalProject, read_tar, safe_rel, tar_stream


def make_project(root: Path) -> dict[str, bytes]:
    files = {
        "project.json": b'{"name": "Harbour"}\n',
        "03_Renders/harbour/wide/take_0001.png": os.urandom(3 * (1 << 20) + 17),  # more than one chunk
        "02_Source_Creative/Canvases/" + "très-long-" * 12 + ".json": b"{}\n",  # past ustar's 100 bytes
        "01_Assets/empty.txt": b"",
        "05_Cache/thumbnails/x.png": b"cache",
        "06_Exports/old.zip": b"export",
        ".git/HEAD": b"ref: refs/heads/main\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_the_tree_travels_as_a_tar_stream_and_arrives_whole_without_git_cache_or_exports(
    tmp_path: Path,
) -> None:
    root = tmp_path / "Harbour"
    files = make_project(root)
    tree = LocalProject(root).tree()
    expected = {
        rel: data for rel, data in files.items() if not rel.startswith((".git/", "05_Cache/", "06_Exports/"))
    }
    assert tree.count == len(expected)

    chunks = list(tar_stream(root, [root / rel for rel in sorted(expected)]))
    assert max(len(c) for c in chunks) <= 1 << 20
    received = {name: fh.read() for name, fh in read_tar(iter(chunks))}
    assert received == expected
    # A standard tar reader agrees.
    archive = tmp_path / "tree.tar"
    archive.write_bytes(b"".join(chunks))
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(expected)


def test_a_file_outside_the_project_or_in_git_is_never_served(tmp_path: Path) -> None:
    root = tmp_path / "Harbour"
    make_project(root)
    (tmp_path / "secret.txt").write_text("not yours")
    files = LocalProject(root)
    for rel in ("../secret.txt", "/etc/passwd", ".git/HEAD", "03_Renders/../../secret.txt", ""):
        assert files.file(rel) is None, rel
    assert safe_rel("03_Renders\\harbour\\wide\\take_0001.png") == "03_Renders/harbour/wide/take_0001.png"
    found = files.file("03_Renders/harbour/wide/take_0001.png")
    assert found is not None
    assert found.stat().st_size == 3 * (1 << 20) + 17
