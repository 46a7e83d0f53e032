"""The workspace on disk: ``Library/``, ``Projects/`` and the trash, and project folders in it.

Every project folder is created in a staging area outside ``Projects/`` and moved into place
with one rename once its repository has its first commit, so a failure at any step leaves no
partial project behind. No path outside ``WORKSPACE_ROOT`` is ever written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid as uuidlib
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from sync import repo
from sync.fastfs import write_file
from sync.lfs import LFS_PATTERNS
from sync.model import MANIFEST, State, files_to_state, state_to_files
from sync.naming import folder_name, with_suffix

LIBRARY_FOLDERS = ("Pipeline_Templates", "Stock_Media", "Branding")
PROJECT_FOLDERS = (
    "01_Assets/Generative_Assets/Characters",
    "01_Assets/Generative_Assets/Styles",
    "01_Assets/Generative_Assets/Locations",
    "02_Source_Creative/Canvases",
    "03_Renders",
    "04_Project_Files",
    "05_Cache",
    "06_Exports",
)
IGNORED_FOLDERS = ("05_Cache", "06_Exports")
GITIGNORE = "".join(f"{folder}/\n" for folder in IGNORED_FOLDERS)
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS)
ZIP_MAX_MEMBERS = 20_000
ZIP_MAX_BYTES = 4 * 1024**3


class ImportError_(ValueError):
    """An import file the studio refuses; the message says why."""


class Workspace:
    """``WORKSPACE_ROOT`` and the project folders under it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.projects = self.root / "Projects"
        self.library = self.root / "Library"
        self.trash = self.root / ".trash"
        self.staging = self.root / ".staging"
        self._claim = threading.Lock()
        self._creating = threading.Lock()
        self._skeleton_made: repo.Skeleton | None = None
        self._taken = _FoldedNames(self.projects)

    def skeleton(self) -> repo.Skeleton:
        """How a new repository's ``.git`` looks on this file system (learned on first use; also
        handed to builder processes)."""
        with self._claim:
            if self._skeleton_made is None:
                self.staging.mkdir(parents=True, exist_ok=True)
                self._skeleton_made = repo.Skeleton(self.staging / f"probe-{uuidlib.uuid4().hex}")
            return self._skeleton_made

    def ensure_layout(self) -> None:
        """Create ``Library/{Pipeline_Templates,Stock_Media,Branding}`` and ``Projects/`` if missing."""
        for sub in LIBRARY_FOLDERS:
            (self.library / sub).mkdir(parents=True, exist_ok=True)
        self.projects.mkdir(parents=True, exist_ok=True)
        self.trash.mkdir(exist_ok=True)
        self.staging.mkdir(exist_ok=True)
        self.clear_staging()

    def clear_staging(self, older_than_s: float = 86_400.0) -> int:
        """Remove staging folders left by a process that stopped while building (a crash, a kill);
        returns how many. Only old ones: another server process may be building in there now."""
        cutoff = time.time() - older_than_s
        gone = 0
        for entry in self.staging.iterdir():
            with contextlib.suppress(OSError):
                if entry.lstat().st_mtime < cutoff:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink()
                    gone += 1
        return gone

    def path_of(self, rel: str) -> Path:
        """The absolute path of a workspace-relative path; refuses anything that leaves the workspace."""
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"{rel!r} is not a path inside the workspace")
        return path

    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    # -- creation -------------------------------------------------------------------------------

    def create_project(
        self, state: State, author: repo.Author, message: str, register: Callable[[str], None]
    ) -> str:
        """Scaffold ``state`` as a new repository, move it into ``Projects/`` and call ``register``.

        ``register`` receives the project's workspace-relative path (``Projects/My_Film``) and
        records it in the index; if it raises, the folder is removed again. Returns that path.
        """
        return self.place_built(self.build(state, author, message), state, register)

    def build(self, state: State, author: repo.Author, message: str) -> Path:
        """Scaffold ``state`` as a new repository in a staging folder and return that folder, for
        :meth:`place_built`. Nothing is left behind if it fails."""
        # One at a time: creations side by side contend for the GIL and the kernel's directory
        # locks and use half as much CPU again for the same number of projects.
        with self._creating:
            return build_repository(self.staging, state, author, message, self.skeleton())

    def place_built(self, stage: Path, state: State, register: Callable[[str], None]) -> str:
        """Move a folder :meth:`build` made into ``Projects/`` and register it; on failure the
        folder is removed, wherever it got to."""
        try:
            return self._place(stage, state["meta"]["name"], register)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)  # not moved yet (once moved, _place cleans up)
            raise

    def import_tree(
        self,
        stage: Path,
        author: repo.Author,
        message: str,
        fresh_uuid: Callable[[str], str],
        register: Callable[[str, State], None],
    ) -> str:
        """Adopt a project tree unpacked in ``stage`` (from a zip or a bundle) as a new project."""
        state = self.prepare_import(stage, author, message, fresh_uuid)
        return self.adopt(stage, state, register)

    def prepare_import(
        self, stage: Path, author: repo.Author, message: str, fresh_uuid: Callable[[str], str]
    ) -> State:
        """Check a project tree unpacked in ``stage`` and commit it there, ready for :meth:`adopt`;
        raises :class:`ImportError_` saying what is wrong with it. Nothing outside ``stage`` changes."""
        if not (stage / MANIFEST).is_file():
            raise ImportError_("The file holds no project.json: it is not a studio project.")
        try:
            state = files_to_state(stage)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ImportError_(f"The project in the file is unreadable: {exc}") from None
        new_uuid = fresh_uuid(state["meta"]["uuid"])
        if new_uuid != state["meta"]["uuid"]:
            state["meta"]["uuid"] = new_uuid
        scaffold(stage, state)
        if not (stage / ".git").exists():
            repo.init(stage)
        repo.commit_all(stage, message, author)
        return state

    def adopt(self, stage: Path, state: State, register: Callable[[str, State], None]) -> str:
        """Move a tree :meth:`prepare_import` made ready into ``Projects/`` and register it."""
        return self._place(stage, state["meta"]["name"], lambda rel: register(rel, state))

    def discard(self, rel: str) -> None:
        """Remove a project folder placed moments ago, when an import of several stops part way."""
        path = self.path_of(rel)
        if path.is_relative_to(self.projects):
            shutil.rmtree(path, ignore_errors=True)

    @contextmanager
    def staged(self) -> Iterator[Path]:
        """A fresh empty staging folder, removed afterwards unless it was moved into place."""
        stage = new_stage(self.staging)
        try:
            yield stage
        finally:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)

    def _place(self, stage: Path, name: str, register: Callable[[str], None]) -> str:
        base = folder_name(name)
        with self._claim:
            n = 1
            while True:
                candidate = base if n == 1 else with_suffix(base, n)
                target = self.projects / candidate
                if candidate.casefold() not in self._taken:
                    try:
                        stage.rename(target)
                        self._taken.add(candidate)
                        break
                    except OSError:
                        pass  # taken by another process in between: try the next suffix
                n += 1
            rel = target.relative_to(self.root).as_posix()  # made from the resolved root: no resolve
            try:
                register(rel)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
        return rel

    # -- trash ----------------------------------------------------------------------------------

    def move_to_trash(self, rel: str, project_id: str) -> str:
        """Move a project folder into the trash; return its trash path (workspace-relative)."""
        source = self.path_of(rel)
        target = self.trash / f"{project_id}__{source.name}"
        self.trash.mkdir(exist_ok=True)
        source.rename(target)
        return self.rel(target)

    def restore_from_trash(self, trash_rel: str, name: str) -> str:
        """Move a trashed folder back under ``Projects/`` (a new suffix if its name was taken)."""
        return self._place(self.path_of(trash_rel), name, lambda rel: None)

    def purge(self, trash_rel: str) -> None:
        """Delete a trashed project for good."""
        path = self.path_of(trash_rel)
        if path.is_relative_to(self.trash.resolve()):
            shutil.rmtree(path, ignore_errors=True)

    # -- export ---------------------------------------------------------------------------------

    def write_zip(self, rel: str, dest: Path) -> None:
        """A zip of the project's tracked tree (no ``.git``, cache or exports) under one top folder."""
        zip_tree(self.path_of(rel), dest)

    def unpack_zip(self, zip_path: Path, stage: Path) -> None:
        """Unpack an exported zip into ``stage``, refusing unsafe or oversized archives."""
        try:
            zf = zipfile.ZipFile(zip_path)
        except zipfile.BadZipFile:
            raise ImportError_(
                "The file is not a zip archive, or it is damaged (a download cut short?)."
            ) from None
        with zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) > ZIP_MAX_MEMBERS or sum(m.file_size for m in members) > ZIP_MAX_BYTES:
                raise ImportError_("The zip archive is too large to import.")
            names = [PurePosixPath(m.filename) for m in members]
            for name in names:
                if name.is_absolute() or ".." in name.parts or "\\" in str(name):
                    raise ImportError_(f"The zip archive holds an unsafe path: {str(name)!r}.")
            prefix = _common_top(names)
            if PurePosixPath(*prefix, MANIFEST) not in names:
                raise ImportError_("The zip archive holds no project.json: it is not a studio project.")
            for member, name in zip(members, names, strict=True):
                rel = PurePosixPath(*name.parts[len(prefix) :])
                if rel.parts and rel.parts[0] == ".git":
                    continue
                target = (stage / rel).resolve()
                if not target.is_relative_to(stage.resolve()):
                    raise ImportError_(f"The zip archive holds an unsafe path: {str(name)!r}.")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)


def tree_files(root: Path) -> list[Path]:
    """The files of a project folder an export holds (no ``.git``, cache or exports), sorted."""
    return [
        path
        for path in sorted(root.rglob("*"))
        if (parts := path.relative_to(root).parts)[0] != ".git"
        and parts[0] not in IGNORED_FOLDERS
        and path.is_file()
    ]


def zip_tree(root: Path, dest: Path, step: Callable[[int, int], None] | None = None) -> None:
    """Zip a project folder (no ``.git``, cache or exports) under one top folder named like it.

    ``step(done, total)`` is called after each file (a long export reports progress, and may
    stop by raising)."""
    files = tree_files(root)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for done, path in enumerate(files, start=1):
            zf.write(path, f"{root.name}/{path.relative_to(root).as_posix()}")
            if step is not None:
                step(done, len(files))


def new_stage(staging: Path) -> Path:
    """A new empty folder under ``staging``, made again first if it is gone (someone tidied the
    workspace while the studio ran)."""
    stage = staging / uuidlib.uuid4().hex
    try:
        stage.mkdir()
    except FileNotFoundError:
        staging.mkdir(parents=True, exist_ok=True)
        stage.mkdir()
    return stage


def build_repository(
    staging: Path, state: State, author: repo.Author, message: str, skeleton: repo.Skeleton
) -> Path:
    """Make a new project's folder tree and repository with its first commit in a new folder under
    ``staging``; returns the folder. Removes it again if anything fails. Runs in the server's own
    process or in a builder process (:class:`sync.builders.Builders`)."""
    stage = new_stage(staging)
    try:
        files = scaffold(stage, state)
        repo.create(stage, files, message, author, skeleton)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return stage


def scaffold(root: Path, state: State) -> dict[str, bytes]:
    """Write the spec's folder tree and the files of ``state`` into ``root``; returns every file
    written (workspace-relative POSIX path → content), so a first commit needs no tree walk."""
    files = {".gitignore": GITIGNORE.encode(), ".gitattributes": GITATTRIBUTES.encode()}
    files.update(state_to_files(state))
    filled = {rel.rsplit("/", 1)[0] for rel in files if "/" in rel}
    folders = {"/".join(parts[:n]) for f in (*PROJECT_FOLDERS, *filled) for parts in [f.split("/")]
               for n in range(1, len(parts) + 1)}  # fmt: skip
    existed = set()
    root.mkdir(parents=True, exist_ok=True)
    base = str(root)  # plain strings: a Path per folder and file showed in the profile
    for folder in sorted(folders, key=lambda f: f.count("/")):  # each once, parents first
        try:
            os.mkdir(f"{base}/{folder}")
        except FileExistsError:  # an imported tree brings its own folders
            existed.add(folder)
    for folder in PROJECT_FOLDERS:
        if folder.split("/")[0] in IGNORED_FOLDERS or folder in filled:
            continue
        if folder not in existed or not any((root / folder).iterdir()):
            # Git keeps no empty folders; a placeholder keeps the tree whole in every clone.
            files[f"{folder}/.gitkeep"] = b""
    for folder in filled & existed:  # a placeholder is no longer needed where files now are
        (root / folder / ".gitkeep").unlink(missing_ok=True)
    for rel, data in files.items():
        write_file(f"{base}/{rel}", data)
    return files


class _FoldedNames:
    """The names in a folder, case-folded: two names differing only by case are one folder on
    macOS and Windows disks, so a project folder never takes a name that differs from another
    only by case.

    Listing ``Projects/`` for every new project costs a millisecond per thousand projects; the
    set is listed again only when the folder's stamp says something else (another process, a
    person in a file manager) changed it. The stamp holds the link count as well as the
    modification time: every subfolder links to its parent, so a folder added or removed in the
    same clock tick as the last listing still shows. Callers hold the workspace's claim lock.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._names: set[str] = set()
        self._stamp: tuple[int, int, int] | None = None

    def _stat(self) -> tuple[int, int, int]:
        st = os.stat(self.folder)
        return st.st_mtime_ns, st.st_ino, st.st_nlink

    def __contains__(self, folded: object) -> bool:
        stamp = self._stat()
        if stamp != self._stamp:
            self._names = {entry.casefold() for entry in os.listdir(self.folder)}
            self._stamp = stamp
        return folded in self._names

    def add(self, name: str) -> None:
        """Record a folder this process just moved in; if anything else changed meanwhile, the
        next lookup lists the folder again."""
        self._names.add(name.casefold())
        stamp, before = self._stat(), self._stamp
        self._stamp = stamp if before is not None and stamp[2] == before[2] + 1 else None


def _common_top(names: list[PurePosixPath]) -> tuple[str, ...]:
    tops = {n.parts[0] for n in names if len(n.parts) > 1}
    if len(tops) == 1 and all(len(n.parts) > 1 for n in names):
        return (tops.pop(),)
    return ()


class ProjectLocks:
    """One lock per project, so two writers never commit to one repository at once."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, project_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(project_id, threading.Lock())
