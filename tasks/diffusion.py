"""``image.diffusion``: text-to-image and image-to-image with Hugging Face diffusers, from a model on
this machine — a diffusers folder (any pipeline its ``model_index.json`` names: SD 1.x, SDXL,
SD3, Flux…) or a single-file checkpoint under ``STUDIO_MODELS_DIR``. Nothing is ever downloaded.

torch and diffusers (the ``gpu`` extra) are imported only when a diffusion task runs, so the
server starts and serves everything else without them.

One loaded pipeline is kept between tasks (loading SDXL from disk takes longer than a render), and
dropped — its memory given back — when a different model is asked for, when a task is cancelled,
runs out of memory or fails, and after :data:`KEEP_IDLE_S` seconds without a task. The GPU's
working memory is released after every task.

>>> generate(params, models_dir, project.file, Hooks(progress, preview, cancelled))  # doctest: +SKIP
Result(png=b'\\x89PNG…', meta={'seed': 1234, 'model': 'sd15', …})
"""

from __future__ import annotations

import gc
import inspect
import io
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from tasks.models import (
    checkpoint_family,
    checkpoint_problem,
    find_models,
    read_index,
    variant_of,
)

if TYPE_CHECKING:
    from tasks.kinds import DiffusionParams

KEEP_IDLE_S = 120.0
PREVIEW_EVERY_S = 1.0  # a preview on the first step, then at most one a second …
PREVIEW_SHARE = 0.05  # … and previews never take more than this share of the time
PREVIEW_SIDE = 128  # pixels, longest side


class Failed(Exception):
    """The generation cannot run or did not finish; the message says why and what to try."""


class Cancelled(Exception):
    """Someone cancelled the task; raised between two denoising steps."""


@dataclass
class Hooks:
    progress: Callable[[float], None]
    preview: Callable[[bytes], None]
    cancelled: Callable[[], bool]


@dataclass
class Result:
    png: bytes
    meta: dict[str, Any]


@dataclass(frozen=True)
class ModelRef:
    id: str
    path: Path
    single_file: bool
    pipeline: str


def resolve_model(models_dir: Path, wanted: str) -> ModelRef:
    """The model ``wanted`` (or the first one found when empty), checked for what it needs before
    anything heavy is loaded."""
    models = find_models(models_dir)
    if not models:
        raise Failed(
            f"No generation models were found in {models_dir}. Put a diffusers model folder or a "
            ".safetensors checkpoint there (STUDIO_MODELS_DIR), then run the task again."
        )
    by_id = {m["id"]: m for m in models}
    chosen = by_id.get(wanted or models[0]["id"])
    if chosen is None:
        raise Failed(f"The model '{wanted}' is not in {models_dir}; the models there: {', '.join(by_id)}.")
    if chosen["problem"]:
        raise Failed(chosen["problem"] + ".")
    return ModelRef(
        chosen["id"], models_dir / chosen["id"], chosen["format"] == "single-file", chosen["pipeline"]
    )


# -- devices and the pipeline cache -------------------------------------------------------------


def pick_device() -> tuple[str, Any]:
    """CUDA when present (fp16), else Apple's MPS, else the CPU (both fp32)."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.float16
    if torch.backends.mps.is_available():
        return "mps", torch.float32
    return "cpu", torch.float32


class _Cache:
    """One loaded pipeline, keyed by model path, device and dtype."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # one generation at a time uses the pipeline
        self.key: tuple[str, float, str, str] | None = None
        self.pipe: Any = None
        self.timer: threading.Timer | None = None

    def get(self, ref: ModelRef, device: str, dtype: Any, models_dir: Path) -> Any:
        stamp = (ref.path / "model_index.json" if not ref.single_file else ref.path).stat().st_mtime
        key = (str(ref.path), stamp, device, str(dtype))
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.key != key:
            self.drop()  # free the old model before loading the next
            self.pipe = _load(ref, device, dtype, models_dir)
            self.key = key
        return self.pipe

    def keep_for_a_while(self) -> None:
        timer = threading.Timer(KEEP_IDLE_S, lambda: self._expire(timer))
        timer.daemon = True
        self.timer = timer
        timer.start()

    def _expire(self, timer: threading.Timer) -> None:
        with self.lock:
            if self.timer is timer:  # not a task that started since
                self.drop()
                gc.collect()  # idle anyway: anything a cycle still held goes too

    def drop(self) -> None:
        with self.lock:
            # The pipeline's modules and weights go with their last reference (no gc.collect here:
            # it takes ~0.3 s with torch loaded, and seconds on a busy machine).
            self.pipe, self.key = None, None
            free_memory()


_cache = _Cache()


def free_memory() -> None:
    """Give the accelerator's cached blocks back (tensors are freed as their last reference goes)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif torch.backends.mps.is_available():
        torch.mps.empty_cache()


def _offline() -> None:
    # Belt and braces: diffusers' from_single_file turns local_files_only off by itself when configs
    # are missing; with the hub offline it cannot download anything anyway.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_OFFLINE = True


def _load(ref: ModelRef, device: str, dtype: Any, models_dir: Path) -> Any:
    _offline()
    import diffusers
    from diffusers import AutoPipelineForText2Image, DiffusionPipeline

    try:
        if ref.single_file:
            pipe = _load_single_file(diffusers, ref, dtype, models_dir)
        else:
            kwargs: dict[str, Any] = {
                "dtype": dtype,
                "local_files_only": True,
                "variant": variant_of(ref.path),
            }
            try:
                pipe = AutoPipelineForText2Image.from_pretrained(ref.path, **kwargs)
            except ValueError:
                # A pipeline AutoPipeline has no text-to-image entry for: load it as the folder says.
                pipe = DiffusionPipeline.from_pretrained(ref.path, **kwargs)
    except Failed:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise Failed(f"{ref.path}: diffusers could not load this model ({_first_line(exc)}).") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _load_single_file(diffusers: Any, ref: ModelRef, dtype: Any, models_dir: Path) -> Any:
    family = checkpoint_family(ref.path)
    if family is None:
        raise Failed(checkpoint_problem(ref.path) + ".")
    config = _single_file_config(family.pipeline, family.config_repo, models_dir)
    if config is None:
        raise Failed(
            f"{ref.path.name} ({family.name} checkpoint): diffusers needs the configuration of "
            f"{family.config_repo} to load it, and that is not on this machine (nothing is downloaded). "
            f"Put a diffusers folder of a {family.pipeline} model in {models_dir} (its config and "
            "tokenizer files are enough), then run again."
        )
    cls = getattr(diffusers, family.pipeline)
    return cls.from_single_file(str(ref.path), config=str(config), local_files_only=True, dtype=dtype)


def _single_file_config(pipeline: str, repo: str, models_dir: Path) -> Path | None:
    """Where the configs for a single-file checkpoint are: a diffusers folder of the same pipeline
    under the models folder, else the Hugging Face cache if that repository was ever fetched."""
    for folder in sorted(models_dir.iterdir()):
        index = read_index(folder) if folder.is_dir() else None
        if index and index.get("_class_name") == pipeline:
            return folder
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo, "model_index.json")
    return Path(cached).parent if isinstance(cached, str) else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# -- one generation -----------------------------------------------------------------------------


def load_init_image(files: Callable[[str], Path | None], ref: str, width: int, height: int) -> Image.Image:
    """The init image of an image-to-image task: a file of the project, or an asset id from
    ``04_Project_Files/assets.json``, cropped to the requested aspect and scaled to its size.
    ``files`` gives a local path to read a project file from (``tasks.project_files``)."""
    path = files(ref)
    if path is None:
        index = files("04_Project_Files/assets.json")
        try:
            assets = json.loads(index.read_text()) if index is not None else {}
        except (OSError, ValueError):
            assets = {}
        asset = assets.get(ref) if isinstance(assets, dict) else None
        if not isinstance(asset, dict) or "path" not in asset:
            raise Failed(
                f"The init image '{ref}' is neither a file of this project nor one of its asset ids."
            )
        path = files(str(asset["path"]))
        if path is None:
            raise Failed(f"The asset '{ref}' has no file in this project ({asset['path']}).")
    try:
        with Image.open(path) as img:
            return ImageOps.fit(img.convert("RGB"), (width, height), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError):
        raise Failed(
            f"The init image '{ref}' is not an image this studio can read (PNG, JPEG, WebP…)."
        ) from None


def _accepts(pipe: Any) -> set[str]:
    return set(inspect.signature(pipe.__call__).parameters)


def _call_kwargs(
    pipe: Any, params: DiffusionParams, generator: Any, init: Image.Image | None
) -> dict[str, Any]:
    accepts = _accepts(pipe)
    kwargs: dict[str, Any] = {"prompt": params.prompt, "num_inference_steps": params.steps,
                              "guidance_scale": params.guidance, "generator": generator}  # fmt: skip
    if params.negative_prompt:
        if "negative_prompt" not in accepts:
            raise Failed(f"This model ({type(pipe).__name__}) takes no negative prompt; leave it empty.")
        kwargs["negative_prompt"] = params.negative_prompt
    if init is not None:
        kwargs.update(image=init, strength=params.strength)
    if "width" in accepts:
        kwargs.update(width=params.width, height=params.height)
    return {k: v for k, v in kwargs.items() if k in accepts}


def preview_png(pipe: Any, latents: Any, width: int, height: int) -> bytes | None:
    """A small picture of where the denoising is: the latents scaled down to at most
    :data:`PREVIEW_SIDE` pixels, decoded by the pipeline's own VAE. None when the pipeline has no
    VAE or latents of a shape this cannot read."""
    import torch
    import torch.nn.functional as F

    vae = getattr(pipe, "vae", None)
    scale = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    if vae is None:
        return None
    if latents.ndim == 3 and hasattr(pipe, "_unpack_latents"):  # Flux packs its latents into tokens
        latents = pipe._unpack_latents(latents, height, width, scale)
    if latents.ndim != 4:
        return None
    latents = latents[:1]
    side = max(latents.shape[-2:])
    limit = max(1, PREVIEW_SIDE // scale)
    if side > limit:
        size = (max(1, latents.shape[-2] * limit // side), max(1, latents.shape[-1] * limit // side))
        latents = F.interpolate(latents.float(), size=size, mode="area")
    cfg = vae.config
    latents = latents / getattr(cfg, "scaling_factor", 1.0) + (getattr(cfg, "shift_factor", None) or 0.0)
    with torch.no_grad():
        image = vae.decode(latents.to(vae.dtype), return_dict=False)[0]
    pixels = ((image[0].float().nan_to_num().clamp(-1, 1) + 1) * 127.5).round().byte()
    buf = io.BytesIO()
    Image.fromarray(pixels.permute(1, 2, 0).cpu().numpy()).save(buf, format="PNG")
    return buf.getvalue()


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def generate(
    params: DiffusionParams, models_dir: Path, files: Callable[[str], Path | None], hooks: Hooks
) -> Result:
    """Run one generation to a PNG, calling ``hooks.progress`` after every step and
    ``hooks.preview`` with a small PNG now and then; raises :class:`Cancelled` between steps when
    ``hooks.cancelled()`` turns true, and :class:`Failed` with words a person can act on."""
    started = time.monotonic()
    ref = resolve_model(models_dir, params.model)  # fails at once, before torch is even imported
    init = (
        load_init_image(files, params.init_image, params.width, params.height) if params.init_image else None
    )
    try:
        import torch
    except ImportError:
        raise Failed(
            "This studio was installed without its generation libraries: install the `gpu` extra "
            "(pip install -e '.[gpu]', or scripts/setup.sh python), then run the task again."
        ) from None
    seed = params.seed if params.seed is not None else secrets.randbelow(2**32)
    device, dtype = pick_device()
    # Errors are caught and raised again only after the pipeline is let go: a traceback keeps the
    # frames of the denoising loop, and with them the pipeline and its GPU memory, alive.
    error: Exception | None = None
    with _cache.lock:
        try:
            pipe = _cache.get(ref, device, dtype, models_dir)
            if init is not None:
                pipe = _image_to_image(pipe)
            image = _run(pipe, params, torch.Generator("cpu").manual_seed(seed), init, hooks)
            used = type(pipe).__name__
        except Cancelled:
            error = Cancelled()
        except Failed as exc:
            error = Failed(str(exc))
        except (RuntimeError, ValueError) as exc:
            if _is_oom(exc):
                error = Failed(
                    f"Out of GPU memory at {params.width}x{params.height}: try a smaller size or fewer "
                    "images, or close other programs using the GPU."
                )
            elif isinstance(exc, ValueError):
                error = Failed(f"{ref.id}: {_first_line(exc)}")
            else:
                _cache.drop()
                raise  # unexpected: logged with its traceback by the runner
        pipe = None
        if error is None:
            free_memory()  # the denoising's working memory
            _cache.keep_for_a_while()
        else:
            _cache.drop()  # cancelled, out of memory or broken: give everything back
    if error is not None:
        raise error
    recipe = {"model": ref.id, "seed": seed, "params": {**params.model_dump(), "seed": seed}}
    png = _png_with_text(image, recipe)  # the same recipe gives the same bytes
    meta = {**recipe, "pipeline": used, "device": device, "width": image.width,
            "height": image.height, "duration_s": round(time.monotonic() - started, 3)}  # fmt: skip
    return Result(png, meta)


def _image_to_image(pipe: Any) -> Any:
    from diffusers import AutoPipelineForImage2Image

    try:
        i2i = AutoPipelineForImage2Image.from_pipe(pipe)
    except ValueError:
        raise Failed(
            f"This model ({type(pipe).__name__}) has no image-to-image pipeline in diffusers."
        ) from None
    i2i.set_progress_bar_config(disable=True)
    return i2i


def _run(pipe: Any, params: DiffusionParams, generator: Any, init: Image.Image | None,
         hooks: Hooks) -> Image.Image:  # fmt: skip
    next_preview = [0.0]

    def on_step_end(p: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if hooks.cancelled():
            raise Cancelled  # stops here: no further step, no decode (setting _interrupt would decode)
        total = getattr(p, "_num_timesteps", None) or params.steps
        hooks.progress(min(0.99, (step + 1) / total))
        now = time.monotonic()
        if now >= next_preview[0] and step + 1 < total and "latents" in tensors:
            png = preview_png(p, tensors["latents"], params.width, params.height)
            cost = time.monotonic() - now
            next_preview[0] = now + max(PREVIEW_EVERY_S, cost / PREVIEW_SHARE)
            if png is not None:
                hooks.preview(png)
        return tensors

    kwargs = _call_kwargs(pipe, params, generator, init)
    if "callback_on_step_end" in _accepts(pipe):
        kwargs["callback_on_step_end"] = on_step_end
    elif hooks.cancelled():
        raise Cancelled
    handles = _cancel_inside_steps(pipe, hooks.cancelled)
    try:
        images = pipe(**kwargs).images
    finally:
        for handle in handles:
            handle.remove()
    if hooks.cancelled():
        raise Cancelled
    image: Image.Image = images[0]
    return image


def _cancel_inside_steps(pipe: Any, cancelled: Callable[[], bool]) -> list[Any]:
    """Check for a cancel before each block of the denoiser too (a dozen checks a step, a few
    microseconds each), so a cancel stops within a fraction of a step even where one step takes
    seconds (SDXL on a small GPU, anything on a CPU)."""
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if denoiser is None or not hasattr(denoiser, "children"):
        return []

    def check(module: Any, args: Any) -> None:
        if cancelled():
            raise Cancelled

    blocks: list[Any] = []
    for child in denoiser.children():
        blocks.extend(child if type(child).__name__ == "ModuleList" else [child])
    return [block.register_forward_pre_hook(check) for block in blocks]


def _png_with_text(image: Image.Image, meta: dict[str, Any]) -> bytes:
    # The parameters ride along inside the PNG, so a take explains itself wherever it is copied.
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", json.dumps(meta, sort_keys=True))
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()
