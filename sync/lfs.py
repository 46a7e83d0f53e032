"""Git LFS, the way the real ``git lfs`` tools expect it: media files are committed as pointer
files, their content stored under ``.git/lfs/objects/aa/bb/<sha256>``.

pygit2 runs no clean filters, so ``sync.repo.commit_all`` swaps the content of every path the
``.gitattributes`` rules send to LFS for its pointer. The repository is configured with the
``lfs`` filter, so ``git status``, ``git lfs ls-files``, ``git lfs fsck`` and a clone with
git-lfs installed all see an ordinary LFS repository.
"""

from __future__ import annotations

import fnmatch
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
    name = PurePosixPath(rel).name
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
