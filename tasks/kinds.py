"""The task kinds: each a pydantic params model (its JSON schema is served at /api/task-kinds so
the PWA builds its forms from it), a queue, and the function that does the work."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks import diffusion
from tasks.outputs import Output
from tasks.project_files import ProjectFiles
from tasks.storyboard import Cancelled as StoryboardCancelled
from tasks.storyboard import StoryboardParams, render_storyboard
from tasks.thumbnails import UnreadableMedia, make_thumbnail


class TaskFailed(Exception):
    """A failure to show the person as it is: say what happened and what to try."""


class Cancelled(Exception):
    """The task stopped because someone cancelled it."""


@dataclass
class Context:
    """What a running task may use. It reads its project through ``project`` (on this machine or
    from the server, ``tasks.project_files``); results go to :meth:`take` and :meth:`output`, and
    nothing is written into the project until the task has finished (``tasks.outputs``)."""

    task_id: str
    project: ProjectFiles
    models_dir: Path
    progress: Callable[[float], None]
    cancelled: Callable[[], bool]
    outputs: list[Output] = field(default_factory=list)
    attempt: int = 1  # 1 on the first run; more when a transient failure is being retried
    scratch: list[Path] = field(default_factory=list)
    # A small PNG of where a long task is (a diffusion every few steps), shown live as task.preview.
    preview: Callable[[bytes], None] = lambda png: None

    def check(self) -> None:
        """Stop here if the task was cancelled (call between steps)."""
        if self.cancelled():
            raise Cancelled

    def take(
        self, data: bytes, media_type: str = "image/png", *, name: str = "take.png", **meta: Any
    ) -> None:
        """A generated result: stored as the next numbered take of the task's target, with ``meta``
        (``seed``, ``model`` …) recorded beside the task's params.

        >>> ctx.take(png_bytes, seed=4821, model="tiny-sd")  # doctest: +SKIP
        """
        self.outputs.append(Output(name, media_type, "take", data=data, meta=meta))

    def output(self, rel: str, data: bytes, kind: str) -> None:
        """A file for ``rel`` (under ``06_Exports/`` or ``05_Cache/``; under ``03_Renders/`` a take)."""
        self.outputs.append(Output(Path(rel).name, kind, _role(rel), data=data, dest=rel))

    def output_file(self, rel: str, source: Path, kind: str) -> None:
        """Like :meth:`output` for a large result already written to the temporary file ``source``."""
        self.outputs.append(Output(Path(rel).name, kind, _role(rel), source=source, dest=rel))

    def scratch_file(self, suffix: str) -> Path:
        """A temporary file for a large result; removed after delivery or when the task stops."""
        fd, name = tempfile.mkstemp(prefix=f"studio-{self.task_id[:8]}-", suffix=suffix)
        os.close(fd)
        self.scratch.append(Path(name))
        return Path(name)

    def cleanup(self) -> None:
        """Remove the temporary files (after delivery, or when the task stopped)."""
        for path in self.scratch:
            path.unlink(missing_ok=True)
        self.scratch.clear()


def _role(rel: str) -> Literal["take", "export", "cache"]:
    # A file for 03_Renders/ is a take: the server picks its folder and number from the target.
    if rel.startswith("03_Renders/"):
        return "take"
    return "export" if rel.startswith("06_Exports/") else "cache"


def thumbnail_path(source: str, size: int) -> str:
    """Where the thumbnail of the project file ``source`` is kept (``05_Cache/``, not in Git)."""
    return f"05_Cache/thumbnails/{hashlib.sha256(source.encode()).hexdigest()[:16]}-{size}.png"


class TakeTarget(BaseModel):
    """Which node (of a canvas) or shot (of a scene) a generation is a take of."""

    model_config = ConfigDict(extra="forbid")

    canvas: str | None = Field(None, min_length=1, max_length=200, description="A canvas id.")
    node: str | None = Field(None, min_length=1, max_length=200, description="A node id of that canvas.")
    scene: str | None = Field(None, min_length=1, max_length=200, description="A scene id of the story.")
    shot: str | None = Field(None, min_length=1, max_length=200, description="A shot id of that scene.")

    @model_validator(mode="after")
    def _one_place(self) -> TakeTarget:
        on_canvas, in_scene = bool(self.canvas or self.node), bool(self.scene or self.shot)
        if (
            on_canvas == in_scene
            or (on_canvas and not (self.canvas and self.node))
            or (in_scene and not (self.scene and self.shot))
        ):
            raise ValueError("give either canvas and node, or scene and shot")
        return self


@dataclass(frozen=True)
class TaskKind:
    kind: str
    queue: Literal["gpu", "cpu"]
    params: type[BaseModel]
    run: Callable[[Context, Any], None]
    size_key: Callable[[Any], str] = lambda params: ""
    description: str = ""


# -- image.diffusion ----------------------------------------------------------------------------


class DiffusionParams(BaseModel):
    prompt: str = Field(min_length=1, max_length=2000, description="What the image shows.")
    negative_prompt: str = Field("", max_length=2000, description="What it must not show.")
    model: str = Field(
        "", max_length=200, description="A model folder or .safetensors under STUDIO_MODELS_DIR."
    )
    init_image: str = Field(
        "", max_length=500,
        description="Image-to-image: a file of the project (its path) or an asset id; empty for text-to-image.",
    )  # fmt: skip
    strength: float = Field(
        0.75, gt=0, le=1, description="Image-to-image: how much of the init image is redrawn."
    )
    steps: int = Field(30, ge=1, le=200, description="Denoising steps.")
    guidance: float = Field(7.5, ge=0, le=30, description="Classifier-free guidance scale.")
    width: int = Field(768, ge=64, le=2048, multiple_of=8)
    height: int = Field(432, ge=64, le=2048, multiple_of=8)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Empty for a random seed.")
    target: TakeTarget | None = Field(
        None, description="The node or shot the image is a take of (03_Renders/<canvas or scene>/<node>/)."
    )


def run_diffusion(ctx: Context, params: DiffusionParams) -> None:
    hooks = diffusion.Hooks(ctx.progress, ctx.preview, ctx.cancelled)
    try:
        result = diffusion.generate(params, ctx.models_dir, ctx.project.file, hooks)
    except diffusion.Cancelled:
        raise Cancelled from None
    except diffusion.Failed as exc:
        raise TaskFailed(str(exc)) from None
    ctx.take(result.png, "image/png", name="take.png", **result.meta)  # seed, model, params, duration_s …


# -- storyboard.sheet ---------------------------------------------------------------------------


def run_storyboard(ctx: Context, params: StoryboardParams) -> None:
    state = ctx.project.state()
    try:
        png, pdf = render_storyboard(state, ctx.project.file, params, ctx.progress, ctx.cancelled)
    except StoryboardCancelled:
        raise Cancelled from None
    except ValueError as exc:
        raise TaskFailed(str(exc)) from None
    stem = f"06_Exports/Storyboards/{params.scene}-{ctx.task_id[:8]}"
    ctx.output(f"{stem}.png", png, "image/png")
    ctx.output(f"{stem}.pdf", pdf, "application/pdf")


# -- asset.thumbnail ----------------------------------------------------------------------------


class ThumbnailParams(BaseModel):
    path: str = Field(
        min_length=1, max_length=500, description="The image or video, relative to the project."
    )
    size: int = Field(320, ge=32, le=1024, description="Longest side of the thumbnail, in pixels.")
    asset: str | None = Field(None, max_length=64, description="The asset it previews, if it is one.")


def run_thumbnail(ctx: Context, params: ThumbnailParams) -> None:
    source = ctx.project.file(params.path)
    if source is None:
        raise TaskFailed(f"There is no file '{params.path}' in this project.")
    try:
        png = make_thumbnail(source, params.size, params.path, ctx.cancelled)
    except UnreadableMedia as exc:
        raise TaskFailed(str(exc)) from None
    ctx.check()
    ctx.output(thumbnail_path(params.path, params.size), png, "image/png")
    ctx.progress(1.0)


# -- project.export -----------------------------------------------------------------------------


class ExportParams(BaseModel):
    format: Literal["bundle", "zip"] = Field(
        "zip", description="A git bundle keeps the history; a zip is plain files."
    )


def run_export(ctx: Context, params: ExportParams) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    rel = f"06_Exports/{ctx.project.name}-{stamp}.{params.format}"
    kind = "application/zip" if params.format == "zip" else "application/x-git-bundle"
    scratch = ctx.scratch_file(f".{params.format}")
    ctx.progress(0.01)
    ctx.check()
    if params.format == "bundle":
        ctx.project.bundle(scratch)
    else:
        tree = ctx.project.tree()
        with zipfile.ZipFile(scratch, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for done, (name, source) in enumerate(tree.entries, start=1):
                with zf.open(f"{ctx.project.name}/{name}", "w", force_zip64=True) as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                ctx.check()  # between two files: a cancel stops a big export within one file's time
                ctx.progress(0.01 + 0.98 * done / max(1, tree.count))
    ctx.output_file(rel, scratch, kind)
    ctx.progress(1.0)


KINDS: dict[str, TaskKind] = {
    k.kind: k
    for k in (
        TaskKind("image.diffusion", "gpu", DiffusionParams, run_diffusion,
                 size_key=lambda p: f"{p.steps}x{p.width}x{p.height}",
                 description="Text-to-image and image-to-image with a local diffusers model."),
        TaskKind("storyboard.sheet", "cpu", StoryboardParams, run_storyboard,
                 description="A printable storyboard (PNG and PDF) of a scene's shots."),
        TaskKind("asset.thumbnail", "cpu", ThumbnailParams, run_thumbnail,
                 description="A preview image of an uploaded image, or of a video's first picture."),
        TaskKind("project.export", "cpu", ExportParams, run_export,
                 description="The project as a zip or git bundle, in 06_Exports/."),
    )
}  # fmt: skip
