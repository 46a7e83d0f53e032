"""The generation models found under ``STUDIO_MODELS_DIR``: diffusers folders and single-file
checkpoints. Nothing is downloaded; what is on disk is what there is.

Everything here reads only JSON and file headers (no torch), so the server lists models and
names what is wrong with a folder without the ``gpu`` extra installed.

>>> folder_problem(Path("models/sd15"))  # doctest: +SKIP
'models/sd15: model_index.json names unet but unet/diffusion_pytorch_model.safetensors is missing'
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
MODEL_WEIGHTS = (
    "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "model.safetensors", "pytorch_model.bin",
    "diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json",
    "diffusion_pytorch_model.bin.index.json", "pytorch_model.bin.index.json",
)  # fmt: skip
# What a component folder must hold besides its config, by the library class's role.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "spiece.model", "tokenizer.model")
LFS_POINTER = b"version https://git-lfs.github.com/spec/"


@dataclass(frozen=True)
class Family:
    """A kind of single-file checkpoint: the keys that tell it, the diffusers pipeline that loads it
    and the Hugging Face repository whose configs describe it."""

    name: str
    keys: tuple[str, ...]
    pipeline: str
    config_repo: str


# Checked in order; the first family with any of its keys in the checkpoint wins.
FAMILIES = (
    Family("SDXL refiner", ("conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias",),
           "StableDiffusionXLImg2ImgPipeline", "stabilityai/stable-diffusion-xl-refiner-1.0"),
    Family("SDXL", ("conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias",),
           "StableDiffusionXLPipeline", "stabilityai/stable-diffusion-xl-base-1.0"),
    Family("SD3", ("joint_blocks.0.context_block.adaLN_modulation.1.bias",
                   "model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias"),
           "StableDiffusion3Pipeline", "stabilityai/stable-diffusion-3-medium-diffusers"),
    Family("Flux", ("double_blocks.0.img_attn.norm.key_norm.scale",
                    "model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale"),
           "FluxPipeline", "black-forest-labs/FLUX.1-dev"),
    Family("SD 2.x", ("cond_stage_model.model.token_embedding.weight",),
           "StableDiffusionPipeline", "stabilityai/stable-diffusion-2-1"),
    Family("SD 1.x", ("model.diffusion_model.output_blocks.11.0.skip_connection.weight",
                      "model.diffusion_model.input_blocks.0.0.weight"),
           "StableDiffusionPipeline", "stable-diffusion-v1-5/stable-diffusion-v1-5"),
)  # fmt: skip


def find_models(models_dir: Path) -> list[dict[str, Any]]:
    """Every usable-looking model: a folder with ``model_index.json`` (a diffusers pipeline) or a
    ``.safetensors``/``.ckpt`` file, with what a person needs to pick one: ``pipeline`` (the
    diffusers class), ``format`` (``folder`` or ``single-file``) and ``problem`` (None, or what is
    wrong with it)."""
    if not models_dir.is_dir():
        return []
    found: list[dict[str, Any]] = []
    for entry in sorted(models_dir.iterdir()):
        if entry.is_dir() and (entry / "model_index.json").is_file():
            index = read_index(entry)
            found.append({
                "id": entry.name, "name": entry.name, "kind": "diffusers", "format": "folder",
                "pipeline": (index or {}).get("_class_name", "unknown"),
                "size": sum(p.stat().st_size for p in entry.rglob("*") if p.is_file()),
                "problem": folder_problem(entry),
            })  # fmt: skip
        elif entry.is_file() and entry.suffix.lower() in CHECKPOINT_SUFFIXES:
            family = checkpoint_family(entry)
            problem = checkpoint_problem(entry) if family is None else None
            found.append({"id": entry.name, "name": entry.stem, "kind": "checkpoint", "format": "single-file",
                          "pipeline": family.pipeline if family else "unknown", "size": entry.stat().st_size,
                          "problem": problem})  # fmt: skip
    return found


def read_index(folder: Path) -> dict[str, Any] | None:
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return None
    return index if isinstance(index, dict) else None


def _is_lfs_pointer(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(LFS_POINTER)) == LFS_POINTER
    except OSError:
        return False


def _component_problem(folder: Path, name: str, library: str, cls: str) -> str | None:
    sub = folder / name
    where = f"{folder}: model_index.json names {name}"
    if not sub.is_dir():
        return f"{where} but the folder {name}/ is missing"
    files = {p.name for p in sub.iterdir() if p.is_file()}
    if "Scheduler" in cls:
        return (
            None
            if "scheduler_config.json" in files
            else f"{where} but {name}/scheduler_config.json is missing"
        )
    if "Tokenizer" in cls:
        return None if files & set(TOKENIZER_FILES) else f"{where} but {name}/ holds no tokenizer files"
    if "ImageProcessor" in cls or "FeatureExtractor" in cls:
        return (
            None
            if "preprocessor_config.json" in files
            else f"{where} but {name}/preprocessor_config.json is missing"
        )
    if library not in ("diffusers", "transformers"):
        return None  # another library's component: its own loader says what it needs
    if "config.json" not in files:
        return f"{where} but {name}/config.json is missing"
    weights = [f for f in files if f in MODEL_WEIGHTS or _variant_weight(f)]
    if not weights:
        expected = "diffusion_pytorch_model.safetensors" if library == "diffusers" else "model.safetensors"
        return f"{where} but {name}/{expected} is missing"
    for weight in weights:
        if _is_lfs_pointer(sub / weight):
            return (
                f"{folder}: {name}/{weight} is a Git LFS pointer, not the weights (run `git lfs pull` there)"
            )
    return None


def _variant_weight(file_name: str) -> bool:
    # diffusion_pytorch_model.fp16.safetensors, model.fp16.safetensors …
    parts = file_name.split(".")
    return len(parts) == 3 and f"{parts[0]}.{parts[2]}" in MODEL_WEIGHTS


def variant_of(folder: Path) -> str | None:
    """``"fp16"`` when the folder's weights exist only as that variant (``*.fp16.safetensors``)."""
    index = read_index(folder) or {}
    variants: set[str | None] = set()
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] not in ("diffusers", "transformers"):
            continue
        sub = folder / name
        names = {p.name for p in sub.iterdir()} if sub.is_dir() else set()
        if names & set(MODEL_WEIGHTS):
            variants.add(None)
        else:
            variants.update(n.split(".")[1] for n in names if _variant_weight(n))
    return next(iter(variants)) if len(variants) == 1 and None not in variants else None


def folder_problem(folder: Path) -> str | None:
    """What keeps a diffusers folder from loading, in words naming the folder and the missing
    part; None when everything model_index.json names is there."""
    if not (folder / "model_index.json").is_file():
        return f"{folder}: model_index.json is missing (not a diffusers model folder)"
    index = read_index(folder)
    if index is None:
        return f"{folder}: model_index.json is not valid JSON"
    if "_class_name" not in index:
        return f"{folder}: model_index.json does not name its pipeline (_class_name)"
    for name, spec in sorted(index.items()):
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or None in spec:
            continue
        problem = _component_problem(folder, name, str(spec[0]), str(spec[1]))
        if problem:
            return problem
    return None


def checkpoint_problem(path: Path) -> str:
    if path.suffix.lower() == ".ckpt":
        return (f"{path.name}: pickled .ckpt checkpoints are not loaded (unpickling can run code); "
                "convert it to .safetensors")  # fmt: skip
    return f"{path.name}: not a checkpoint this studio recognises (SD 1.x/2.x, SDXL, SD3, Flux)"


def safetensors_keys(path: Path) -> set[str] | None:
    """The tensor names in a ``.safetensors`` file, read from its header alone; None when the file
    is not one."""
    try:
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if not 2 <= length <= 100_000_000:
                return None
            header = json.loads(f.read(length))
    except (OSError, ValueError, struct.error):
        return None
    return {k for k in header if k != "__metadata__"} if isinstance(header, dict) else None


def checkpoint_family(path: Path) -> Family | None:
    """Which kind of model a single-file checkpoint is (None: not one this studio recognises).
    Only ``.safetensors`` headers can be read without loading the file; ``.ckpt`` is pickled."""
    if path.suffix.lower() != ".safetensors":
        return None
    keys = safetensors_keys(path)
    if keys is None:
        return None
    return next((f for f in FAMILIES if any(k in keys for k in f.keys)), None)
