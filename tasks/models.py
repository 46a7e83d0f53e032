"""The generation models found under ``STUDIO_MODELS_DIR``: diffusers folders and single-file
checkpoints. Nothing is downloaded; what is on disk is what there is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")


def find_models(models_dir: Path) -> list[dict[str, Any]]:
    """Every usable-looking model: a folder with ``model_index.json`` (a diffusers pipeline) or a
    ``.safetensors``/``.ckpt`` file, with what a person needs to pick one."""
    if not models_dir.is_dir():
        return []
    found: list[dict[str, Any]] = []
    for entry in sorted(models_dir.iterdir()):
        if entry.is_dir() and (entry / "model_index.json").is_file():
            try:
                index = json.loads((entry / "model_index.json").read_text())
            except (OSError, ValueError):
                index = {}
            found.append({
                "id": entry.name, "name": entry.name, "kind": "diffusers",
                "pipeline": index.get("_class_name", "unknown"),
                "size": sum(p.stat().st_size for p in entry.rglob("*") if p.is_file()),
            })  # fmt: skip
        elif entry.is_file() and entry.suffix.lower() in CHECKPOINT_SUFFIXES:
            found.append({"id": entry.name, "name": entry.stem, "kind": "checkpoint", "pipeline": "single-file",
                          "size": entry.stat().st_size})  # fmt: skip
    return found
