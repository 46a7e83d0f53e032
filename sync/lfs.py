"""Git LFS, the way the real ``git lfs`` tools expect it: media files are committed as pointer
files, their content stored under ``.git/lfs/objects/aa/bb/<sha256>``.

pygit2 runs no clean filters, so ``sync.repo.commit_all`` swaps the content of every path the
``.gitattributes`` rules send to LFS for its pointer. The repository is configured with the
``lfs`` filter, so ``git status``, ``git lfs ls-files``, ``git lfs fsck`` and a clone with
git-lfs installed all see an ordinary LFS repository.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import shutil
from pathlib import Path, PurePosixPath

import pygit2

# The .gitattributes rules of every project (the product spec names the first five).
LFS_PATTERNS = (
    "*.mp4",
    "*.mov",
    "*.webm",
    "*.png",
    "*.jpg",
    "*.jpeg",
    "*.webp",
    "*.exr",
    "*.tif",
    "*.tiff",
    "*.wav",
    "*.mp3",
    "*.flac",
    "*.safetensors",
    "*.ckpt",
    "*.pt",
)
POINTER_HEAD = b"version https://git-lfs.github.com/spec/v1\n"
FILTER_CONFIG = {
    "filter.lfs.clean": "git-lfs clean -- %f",
    "filter.lfs.smudge": "git-lfs smudge -- %f",
    "filter.lfs.process": "git-lfs filter-process",
    "filter.lfs.required": "true",
}


def is_lfs_path(rel: str) -> bool:
    """Whether ``.gitattributes`` sends ``rel`` to LFS (patterns match the file name)."""
    return _is_lfs_name(PurePosixPath(rel).name)


@functools.lru_cache(maxsize=4096)
def _is_lfs_name(name: str) -> bool:
    # Remembered: the same few file names come back in every project and every commit.
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in LFS_PATTERNS)


def pointer(oid: str, size: int) -> bytes:
    return POINTER_HEAD + f"oid sha256:{oid}\nsize {size}\n".encode()


def is_pointer(data: bytes) -> bool:
    return data.startswith(POINTER_HEAD) and len(data) < 512


def store(git_dir: Path, source: Path) -> tuple[str, int]:
    """Copy ``source`` into the LFS object store of ``git_dir``; returns (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    oid = digest.hexdigest()
    target = git_dir / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    return oid, size


def configure(repo: pygit2.Repository) -> None:
    """Give the repository the ``lfs`` filter, as ``git lfs install --local`` does."""
    local = Path(repo.path) / "config"
    if '[filter "lfs"]' in local.read_text(encoding="utf-8"):
        config = repo.config
        for key, value in FILTER_CONFIG.items():
            config[key] = value
        return
    # A repository without the section (every new one) gets it in one write: libgit2 rewrites
    # and renames the whole file for each key set, 14 ms of a 30 ms project creation.
    section = '[filter "lfs"]\n' + "".join(
        f"\t{key.rsplit('.', 1)[1]} = {value}\n" for key, value in FILTER_CONFIG.items()
    )
    with open(local, "a", encoding="utf-8") as fh:
        fh.write(section)


def swap_for_pointers(repo: pygit2.Repository, root: Path) -> None:
    """Replace the staged content of every LFS path in the index with its pointer."""
    index = repo.index
    changed = False
    for entry in list(index):
        if not is_lfs_path(entry.path):
            continue
        blob = repo[entry.id]
        if isinstance(blob, pygit2.Blob) and is_pointer(blob.data):
            continue
        oid, size = store(Path(repo.path), root / entry.path)
        pointer_id = repo.create_blob(pointer(oid, size))
        index.add(pygit2.IndexEntry(entry.path, pointer_id, entry.mode))
        changed = True
    if changed:
        configure(repo)
        index.write()


def object_path(git_dir: Path, oid: str) -> Path:
    """Where the LFS object ``oid`` lives in the store of ``git_dir`` (``.git``)."""
    return git_dir / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def read_pointer(data: bytes) -> tuple[str, int] | None:
    """(sha256, size) of an LFS pointer file's content, or None if it is not one."""
    if not is_pointer(data):
        return None
    fields = dict(line.split(" ", 1) for line in data.decode("ascii", "replace").splitlines() if " " in line)
    oid = fields.get("oid", "").removeprefix("sha256:")
    if len(oid) != 64 or any(ch not in "0123456789abcdef" for ch in oid):
        return None
    try:
        return oid, int(fields.get("size", ""))
    except ValueError:
        return None


def referenced(root: Path) -> dict[str, int]:
    """sha256 → size of every LFS object a commit of any branch or tag of the repository at
    ``root`` points to: what a copy of the repository needs for its whole history. Each tree
    is read once however many commits share it."""
    repo = pygit2.Repository(str(root))
    found: dict[str, int] = {}
    seen: set[pygit2.Oid] = set()

    def visit(tree: pygit2.Tree) -> None:
        for entry in tree:
            if entry.id in seen:
                continue
            seen.add(entry.id)
            obj = repo[entry.id]
            if isinstance(obj, pygit2.Tree):
                visit(obj)
            elif isinstance(obj, pygit2.Blob) and obj.size < 512 and (ptr := read_pointer(obj.data)):
                found[ptr[0]] = ptr[1]

    tips = [ref.peel(pygit2.Commit).id for ref in repo.references.iterator() if _is_commit(ref)]
    if not tips:
        return found
    walker = repo.walk(tips[0])
    for tip in tips[1:]:
        walker.push(tip)
    for commit in walker:
        if commit.tree_id not in seen:
            seen.add(commit.tree_id)
            visit(commit.tree)
    return found


def _is_commit(ref: pygit2.Reference) -> bool:
    try:
        ref.peel(pygit2.Commit)
    except (pygit2.InvalidSpecError, ValueError, KeyError):
        return False
    return True


def check_out_media(root: Path) -> list[str]:
    """Give every LFS pointer file of the checked-out tree at ``root`` its content, where the
    object is in the repository's store (as ``git lfs checkout`` does, after a clone made without
    the LFS filter); returns the paths whose object is not there, which stay pointers."""
    repo = pygit2.Repository(str(root))
    if repo.head_is_unborn:
        return []
    git_dir = Path(repo.path)
    missing: list[str] = []

    def walk(tree: pygit2.Tree, prefix: str) -> None:
        for entry in tree:
            rel = f"{prefix}{entry.name}"
            obj = repo[entry.id]
            if isinstance(obj, pygit2.Tree):
                walk(obj, rel + "/")
                continue
            if not isinstance(obj, pygit2.Blob) or obj.size >= 512 or not (ptr := read_pointer(obj.data)):
                continue
            source, target = object_path(git_dir, ptr[0]), root / rel
            if not source.is_file():
                missing.append(rel)
            elif (
                not target.is_file()
                or target.stat().st_size != ptr[1]
                or is_pointer(target.read_bytes()[:512])
            ):
                tmp = target.with_name(f".{target.name}.media")
                shutil.copyfile(source, tmp)
                tmp.replace(target)

    walk(repo.head.peel(pygit2.Commit).tree, "")
    return sorted(missing)
