"""What tasks.models says about a models folder, without torch: each way a diffusers folder can be
broken is named with the folder and the missing part; single files are told apart by their header."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tasks.models import checkpoint_family, find_models, folder_problem, variant_of


def diffusers_folder(root: Path, *, weights: str = "diffusion_pytorch_model.safetensors") -> Path:
    folder = root / "sd15"
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "scheduler": ["diffusers", "PNDMScheduler"], "safety_checker": [None, None]}  # fmt: skip
    for name, files in {"unet": ["config.json", weights], "text_encoder": ["config.json", "model.safetensors"],
                        "tokenizer": ["vocab.json", "merges.txt"], "scheduler": ["scheduler_config.json"]}.items():  # fmt: skip
        (folder / name).mkdir(parents=True)
        for file in files:
            (folder / name / file).write_bytes(b"{}")
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def test_a_complete_folder_has_no_problem(tmp_path: Path) -> None:
    assert folder_problem(diffusers_folder(tmp_path)) is None


def test_missing_weights_name_the_folder_component_and_file(tmp_path: Path) -> None:
    folder = diffusers_folder(tmp_path)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    assert folder_problem(folder) == (
        f"{folder}: model_index.json names unet but unet/diffusion_pytorch_model.safetensors is missing"
    )


def test_each_missing_part_is_named(tmp_path: Path) -> None:
    folder = diffusers_folder(tmp_path)
    (folder / "scheduler" / "scheduler_config.json").unlink()
    assert (
        folder_problem(folder)
        == f"{folder}: model_index.json names scheduler but scheduler/scheduler_config.json is missing"
    )
    (folder / "scheduler" / "scheduler_config.json").write_text("{}")
    for file in (folder / "tokenizer").iterdir():
        file.unlink()
    assert (
        folder_problem(folder)
        == f"{folder}: model_index.json names tokenizer but tokenizer/ holds no tokenizer files"
    )
    (folder / "tokenizer").rmdir()
    assert (
        folder_problem(folder)
        == f"{folder}: model_index.json names tokenizer but the folder tokenizer/ is missing"
    )


def test_git_lfs_pointers_instead_of_weights_are_called_what_they_are(tmp_path: Path) -> None:
    folder = diffusers_folder(tmp_path)
    (folder / "text_encoder" / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 492265168\n"
    )
    problem = folder_problem(folder)
    assert problem is not None
    assert "text_encoder/model.safetensors is a Git LFS pointer" in problem
    assert "git lfs pull" in problem


def test_an_unreadable_index_is_reported(tmp_path: Path) -> None:
    folder = diffusers_folder(tmp_path)
    (folder / "model_index.json").write_text("{not json")
    assert folder_problem(folder) == f"{folder}: model_index.json is not valid JSON"
    assert find_models(tmp_path)[0]["pipeline"] == "unknown"


def test_fp16_only_folders_load_as_that_variant(tmp_path: Path) -> None:
    folder = diffusers_folder(tmp_path, weights="diffusion_pytorch_model.fp16.safetensors")
    (folder / "text_encoder" / "model.safetensors").rename(folder / "text_encoder" / "model.fp16.safetensors")
    assert folder_problem(folder) is None
    assert variant_of(folder) == "fp16"
    assert variant_of(diffusers_folder(tmp_path / "plain")) is None


def safetensors(path: Path, *keys: str) -> Path:
    header = json.dumps({k: {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]} for k in keys}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    return path


def test_single_files_are_told_apart_by_their_keys(tmp_path: Path) -> None:
    cases = {
        "model.diffusion_model.input_blocks.0.0.weight": "StableDiffusionPipeline",
        "conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": "StableDiffusionXLPipeline",
        "model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias": "StableDiffusion3Pipeline",
        "double_blocks.0.img_attn.norm.key_norm.scale": "FluxPipeline",
    }
    for n, (key, pipeline) in enumerate(cases.items()):
        family = checkpoint_family(safetensors(tmp_path / f"m{n}.safetensors", key))
        assert family is not None
        assert family.pipeline == pipeline
    assert checkpoint_family(safetensors(tmp_path / "lora.safetensors", "lora_unet_down.alpha")) is None
    (tmp_path / "old.ckpt").write_bytes(b"PK\3\4")
    listed = {m["id"]: m for m in find_models(tmp_path)}
    assert "convert it to .safetensors" in listed["old.ckpt"]["problem"]
    assert listed["m1.safetensors"]["problem"] is None
