"""Frozen encoders of the base model: pixels -> VAE latents, captions -> text embeddings.

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


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    """Captions -> the text encoder's last hidden state (b, seq, dim), padded to the tokenizer's max length, as
    StableDiffusionPipeline.encode_prompt does (the attention mask only for encoders configured to use one).
    The one prompt encoder: training, latent caches, validation and generate all call it."""
    tokens = tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    ids = tokens.input_ids.to(text_encoder.device)  # (b, seq)
    use_mask = getattr(text_encoder.config, "use_attention_mask", False)
    mask = tokens.attention_mask.to(text_encoder.device) if use_mask else None
    return text_encoder(ids, attention_mask=mask)[0]  # (b, seq, dim)
