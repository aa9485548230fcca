"""The frozen VAE of the base model: pixels -> latents (captions -> text embeddings live in `ldm_video.text`).

Every VAE goes through the `ldm_video.vae.VideoVAE` interface (the base's 2D VAE frame by frame, or a video
VAE from `ldm-video train-vae`); the latent scale comes from the VAE's config (SPEC §0), never a constant.
"""

from __future__ import annotations

import torch


def as_video_vae(vae):
    """A diffusers AutoencoderKL becomes the frame-by-frame `ImageVAE`; a `VideoVAE` stays as it is."""
    from ldm_video.vae import ImageVAE, VideoVAE

    return vae if isinstance(vae, VideoVAE) else ImageVAE(vae)


@torch.no_grad()
def encode_video(vae, pixel_values: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """pixel_values (b, 3, F, H, W) in [-1, 1] -> scaled latents (b, 4, f, H/8, W/8), a posterior sample.

    f == F for per-frame VAEs, (F - 1) / 4 + 1 for the causal 3D VAE.
    """
    latents = as_video_vae(vae).encode(pixel_values, sample=True, generator=generator)  # (b, 4, f, h, w)
    # contiguous: the VAE returns channels-last strides, and torch 2.13's CPU backward of the U-Net
    # segfaults on (b, c, f, h, w) views with those strides
    return latents.contiguous()
