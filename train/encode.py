"""Frozen encoders of the base model: pixels -> VAE latents, captions -> text embeddings.

The latent scale always comes from `vae.config.scaling_factor` (SPEC §0), never a constant.
"""

from __future__ import annotations

import torch
from einops import rearrange


@torch.no_grad()
def encode_video(vae, pixel_values: torch.Tensor, generator: torch.Generator | None = None,
                 chunk: int = 8) -> torch.Tensor:
    """pixel_values (b, 3, f, H, W) in [-1, 1] -> scaled latents (b, 4, f, H/8, W/8), frames in chunks."""
    b = pixel_values.shape[0]
    frames = rearrange(pixel_values, "b c f h w -> (b f) c h w").to(vae.device, vae.dtype)  # ((b f), 3, H, W)
    parts = []
    for start in range(0, frames.shape[0], chunk):  # step: encode a chunk of frames
        dist = vae.encode(frames[start:start + chunk]).latent_dist
        parts.append(dist.sample(generator=generator))  # (n, 4, h, w)
    latents = torch.cat(parts) * vae.config.scaling_factor  # ((b f), 4, h, w)
    # contiguous: the VAE returns channels-last strides, and torch 2.13's CPU backward of the U-Net
    # segfaults on (b, c, f, h, w) views with those strides
    return rearrange(latents, "(b f) c h w -> b c f h w", b=b).contiguous()  # (b, 4, f, h, w)


@torch.no_grad()
def decode_video(vae, latents: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """Scaled latents (b, 4, f, h, w) -> pixels (b, 3, f, H, W) in [-1, 1], frames in chunks."""
    b = latents.shape[0]
    z = rearrange(latents, "b c f h w -> (b f) c h w") / vae.config.scaling_factor  # ((b f), 4, h, w)
    z = z.to(vae.device, vae.dtype)
    frames = torch.cat([vae.decode(z[s:s + chunk]).sample for s in range(0, z.shape[0], chunk)])  # ((b f), 3, H, W)
    return rearrange(frames.clamp(-1, 1), "(b f) c h w -> b c f h w", b=b)  # (b, 3, f, H, W)


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    """Captions -> the text encoder's last hidden state (b, seq, dim), padded to the tokenizer's max length."""
    tokens = tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    ids = tokens.input_ids.to(text_encoder.device)  # (b, seq)
    return text_encoder(ids)[0]  # (b, seq, dim)
