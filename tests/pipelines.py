"""Randomly initialised Stable Diffusion pipelines built from configs alone, saved as diffusers
folders: a tiny one the tests run on the CPU in well under a second, and one shaped like SD 1.5
(same layers and sizes, random weights) for ``scripts/bench/diffusion.py``.

The tokenizer is written here too: a byte-level BPE vocabulary with every byte character, plain
and as a word end, and no merges, which ``CLIPTokenizer.from_pretrained`` reads like any other.

>>> build_pipeline(tmp_path / "models" / "tiny-sd")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

MAX_TOKENS = 77


def _byte_characters() -> list[str]:
    # The byte-to-character table of byte-level BPE: printable bytes stand for themselves, the
    # others are shifted past 255 so that every byte has a visible character.
    plain = [b for b in range(33, 256) if not 127 <= b <= 160 and b != 173]
    shifted = [b for b in range(256) if b not in plain]
    table = {b: chr(b) for b in plain} | {b: chr(256 + n) for n, b in enumerate(shifted)}
    return [table[b] for b in range(256)]


def write_tokenizer(folder: Path) -> dict[str, int]:
    """vocab.json and merges.txt of a byte-level CLIP tokenizer; returns the vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = _byte_characters()
    vocab = {token: n for n, token in enumerate([*chars, *(c + "</w>" for c in chars)])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return vocab


def build_pipeline(dest: Path, *, real_size: bool = False, seed: int = 0) -> Any:
    """A StableDiffusionPipeline with random weights saved at ``dest`` (returned as well)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with tempfile.TemporaryDirectory() as folder:
        vocab = write_tokenizer(Path(folder))
        tokenizer = CLIPTokenizer.from_pretrained(folder, model_max_length=MAX_TOKENS)
    torch.manual_seed(seed)
    ids = {
        "bos_token_id": vocab["<|startoftext|>"],
        "eos_token_id": vocab["<|endoftext|>"],
        "pad_token_id": 1,
    }
    if real_size:  # Stable Diffusion 1.5's shapes
        text = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                              num_hidden_layers=12, max_position_embeddings=MAX_TOKENS, **ids)  # fmt: skip
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=512,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        )  # fmt: skip
    else:
        text = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_attention_heads=4,
                              num_hidden_layers=2, max_position_embeddings=MAX_TOKENS, **ids)  # fmt: skip
        unet = UNet2DConditionModel(
            block_out_channels=(4, 8), layers_per_block=1, norm_num_groups=2, sample_size=8,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=2,
        )  # fmt: skip
        vae = AutoencoderKL(
            block_out_channels=(4, 8), norm_num_groups=2, latent_channels=4, sample_size=16,
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        )  # fmt: skip
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)  # fmt: skip
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=CLIPTextModel(text), tokenizer=tokenizer, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.save_pretrained(dest)
    return pipe
