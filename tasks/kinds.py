"""The task kinds: each a pydantic params model (its JSON schema is served at /api/task-kinds so
the PWA builds its forms from it), a queue, and the function that does the work."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field

from sync import repo
from sync.model import files_to_state
from sync.workspace import zip_tree
from tasks.models import find_models
from tasks.storyboard import Cancelled as StoryboardCancelled
from tasks.storyboard import StoryboardParams, render_storyboard


class TaskFailed(Exception):
    """A failure to show the person as it is: say what happened and what to try."""


class Cancelled(Exception):
    """The task stopped because someone cancelled it."""


@dataclass
class Context:
    task_id: str
    root: Path
    models_dir: Path
    progress: Callable[[float], None]
    cancelled: Callable[[], bool]
    outputs: list[dict[str, Any]] = field(default_factory=list)
    attempt: int = 1  # 1 on the first run; more when a transient failure is being retried

    def check(self) -> None:
        """Stop here if the task was cancelled (call between steps)."""
        if self.cancelled():
            raise Cancelled

    def output(self, rel: str, data: bytes, kind: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.outputs.append(
            {"path": rel, "kind": kind, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )


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
    steps: int = Field(30, ge=1, le=200, description="Denoising steps.")
    guidance: float = Field(7.5, ge=0, le=30, description="Classifier-free guidance scale.")
    width: int = Field(768, ge=64, le=2048, multiple_of=8)
    height: int = Field(432, ge=64, le=2048, multiple_of=8)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Empty for a random seed.")


def run_diffusion(ctx: Context, params: DiffusionParams) -> None:
    models = [m["id"] for m in find_models(ctx.models_dir)]
    if not models:
        raise TaskFailed(
            f"No generation models were found in {ctx.models_dir}. Put a diffusers model folder or a "
            ".safetensors checkpoint there (STUDIO_MODELS_DIR), then run the task again."
        )
    wanted = params.model or models[0]
    if wanted not in models:
        raise TaskFailed(
            f"The model '{wanted}' is not in {ctx.models_dir}; the models there: {', '.join(models)}."
        )
    raise TaskFailed(
        f"The model '{wanted}' was found, but this studio build cannot run diffusion pipelines yet "
        "(the image.diffusion generator lands with its GPU worker)."
    )


# -- storyboard.sheet ---------------------------------------------------------------------------


def run_storyboard(ctx: Context, params: StoryboardParams) -> None:
    state = files_to_state(ctx.root)
    try:
        png, pdf = render_storyboard(state, ctx.root, params, ctx.progress, ctx.cancelled)
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


def run_thumbnail(ctx: Context, params: ThumbnailParams) -> None:
    source = (ctx.root / params.path).resolve()
    if not source.is_relative_to(ctx.root.resolve()) or not source.is_file():
        raise TaskFailed(f"There is no file '{params.path}' in this project.")
    try:
        with Image.open(source) as img:
            thumb = img.convert("RGB")
    except (UnidentifiedImageError, OSError):
        raise TaskFailed(
            f"'{params.path}' is not an image this studio can read (PNG, JPEG, WebP…)."
        ) from None
    ctx.check()
    thumb.thumbnail((params.size, params.size))
    buf = io.BytesIO()
    thumb.save(buf, format="PNG")
    digest = hashlib.sha256(params.path.encode()).hexdigest()[:16]
    ctx.output(f"05_Cache/thumbnails/{digest}-{params.size}.png", buf.getvalue(), "image/png")
    ctx.progress(1.0)


# -- project.export -----------------------------------------------------------------------------


class ExportParams(BaseModel):
    format: Literal["bundle", "zip"] = Field(
        "zip", description="A git bundle keeps the history; a zip is plain files."
    )


def run_export(ctx: Context, params: ExportParams) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    dest = ctx.root / "06_Exports" / f"{ctx.root.name}-{stamp}.{params.format}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    ctx.progress(0.1)
    ctx.check()
    if params.format == "bundle":
        repo.bundle(ctx.root, dest)
    else:
        zip_tree(ctx.root, dest)
    data = dest.read_bytes()
    ctx.outputs.append(
        {"path": dest.relative_to(ctx.root).as_posix(), "kind": f"application/{'zip' if params.format == 'zip' else 'x-git-bundle'}",
         "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    )  # fmt: skip
    ctx.progress(1.0)


KINDS: dict[str, TaskKind] = {
    k.kind: k
    for k in (
        TaskKind("image.diffusion", "gpu", DiffusionParams, run_diffusion,
                 size_key=lambda p: f"{p.steps}x{p.width}x{p.height}",
                 description="Text-to-image with a local diffusers model."),
        TaskKind("storyboard.sheet", "cpu", StoryboardParams, run_storyboard,
                 description="A printable storyboard (PNG and PDF) of a scene's shots."),
        TaskKind("asset.thumbnail", "cpu", ThumbnailParams, run_thumbnail,
                 description="A preview image of an uploaded image."),
        TaskKind("project.export", "cpu", ExportParams, run_export,
                 description="The project as a zip or git bundle, in 06_Exports/."),
    )
}  # fmt: skip
