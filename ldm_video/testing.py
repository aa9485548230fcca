"""Tiny random models in the real diffusers folder layout, for tests, benchmarks and offline demos.

They are shaped like Stable Diffusion 2.1 (linear projections in the transformers, heads per block,
OpenCLIP-style text encoder, 8x VAE, 4 latent channels), only small, and are saved with diffusers'
own `save_pretrained` so that the code under test is the real loading code. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

# a byte-level vocabulary small enough to build by hand: every printable ASCII character,
# alone and as a word end, plus CLIP's two special tokens
_CHARS = [chr(c) for c in range(33, 127)]
_SPECIAL = ["<|startoftext|>", "<|endoftext|>"]


def write_tiny_tokenizer(path: str | os.PathLike, words: tuple[str, ...] = ()) -> Path:
    """Write a CLIP BPE tokenizer with a ~200-token local vocabulary: single characters, plus BPE merges that make
    each of `words` (lower-case letters) one token, as CLIP's vocabulary does for common words."""
    from tokenizers.models import BPE
    from transformers import CLIPTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokens = _CHARS + [c + "</w>" for c in _CHARS]
    chains = {}
    for word in words:  # left to right: w+o, wo+r, ...
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        chains[word] = [("".join(pieces[:i]), pieces[i]) for i in range(1, len(pieces))]
        tokens += [a + b for a, b in chains[word] if a + b not in tokens]
    vocab = {tok: i for i, tok in enumerate(tokens + _SPECIAL)}
    merges = [m for chain in chains.values() for m in chain]
    for _ in range(10 * len(words) + 1):  # a word that other merges split gets its chain moved first
        bpe = BPE(vocab=vocab, merges=merges, end_of_word_suffix="</w>")  # the model CLIPTokenizer runs
        broken = [w for w in words if len(bpe.tokenize(w)) != 1]
        if not broken:
            break
        merges = chains[broken[0]] + [m for m in merges if m not in chains[broken[0]]]
    else:
        raise ValueError(f"BPE merges cannot make each of {words} one token")
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    # from_pretrained reads vocab.json + merges.txt in both transformers 4 and 5
    tokenizer = CLIPTokenizer.from_pretrained(path, pad_token="!", model_max_length=77)  # SD 2.x pads with "!"
    tokenizer.save_pretrained(path)
    return path


def tiny_unet_config(prediction_type: str = "epsilon", shape: str = "sd21") -> dict:
    """UNet2DConditionModel kwargs of the SD 2.1 family (or SD 1.x when shape='sd15'), tiny."""
    config = {
        "sample_size": 8 if prediction_type == "epsilon" else 12,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
        "block_out_channels": (32, 64),
        "layers_per_block": 2,
        "cross_attention_dim": 32,
        "attention_head_dim": (2, 4),  # diffusers' historical name for the number of heads
        "use_linear_projection": True,
        "upcast_attention": prediction_type == "v_prediction",
        "norm_num_groups": 32,
    }
    if shape == "sd15":
        config.update(attention_head_dim=8, use_linear_projection=False, upcast_attention=False)
    return config


def tiny_vae_config() -> dict:
    """AutoencoderKL kwargs with SD's 8x down-sampling and 4 latent channels, tiny."""
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (32, 32, 64, 64),
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 32,
        "sample_size": 64,
        "scaling_factor": 0.18215,
    }


def write_tiny_sd(
    path: str | os.PathLike,
    prediction_type: str = "epsilon",
    shape: str = "sd21",
    seed: int = 0,
) -> Path:
    """Write a tiny random Stable Diffusion pipeline folder (unet, vae, text_encoder, tokenizer, scheduler).

    Args:
        prediction_type: "epsilon" (like SD 2.1-base, 512 px) or "v_prediction" (like SD 2.1, 768 px).
        shape: "sd21" (the family this toolkit targets) or "sd15" (for the refusal tests).
    """
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path = Path(path)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**tiny_unet_config(prediction_type, shape))
    vae = AutoencoderKL(**tiny_vae_config())
    tok_dir = write_tiny_tokenizer(path / "_tok")
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act="gelu" if shape == "sd21" else "quick_gelu",  # OpenCLIP ViT-H uses gelu
        projection_dim=32,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        pad_token_id=0,
    ))
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1, prediction_type=prediction_type, num_train_timesteps=1000,
    )
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    for f in (tok_dir).iterdir():
        f.unlink()
    tok_dir.rmdir()
    return path


def write_random_sd21(path: str | os.PathLike, prediction_type: str = "epsilon", seed: int = 0) -> Path:
    """Write a full-size SD 2.1 pipeline folder with random weights (the shipped configs, scheduler and CLIP
    tokenizer; ~5 GB in fp32), for the memory and speed benchmarks, where size matters; a folder that already holds
    one is kept."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from ldm_video.sd2_configs import SD2_DIR, shipped_config

    path = Path(path)
    if (path / "model_index.json").exists():
        return path
    torch.manual_seed(seed)
    pipe = StableDiffusionPipeline(
        unet=UNet2DConditionModel(**shipped_config("unet", prediction_type)),
        vae=AutoencoderKL(**shipped_config("vae")), text_encoder=CLIPTextModel(CLIPTextConfig(**shipped_config("text_encoder"))),
        tokenizer=CLIPTokenizer.from_pretrained(SD2_DIR / "tokenizer"),
        scheduler=DDIMScheduler.from_config(shipped_config("scheduler", prediction_type)),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def write_tiny_bare_unet(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write only a UNet2DConditionModel folder (config.json + weights), as people sometimes pass by mistake."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    UNet2DConditionModel(**tiny_unet_config()).save_pretrained(path, safe_serialization=True)
    return Path(path)
