"""`generate --extend freenoise`: long videos with FreeNoise (Qiu et al., "FreeNoise: Tuning-Free Longer Video
Diffusion via Noise Rescheduling", ICLR 2024), through diffusers' own `AnimateDiffPipeline.enable_free_noise`.

Nothing of FreeNoise is re-implemented here: the loaded base and the trained temporal attention (a diffusers
`MotionAdapter` as it stands) are handed to `AnimateDiffPipeline`, whose FreeNoise runs the motion modules
over sliding context windows of `--clip-frames` frames, `--clip-frames - --overlap` apart, fused with pyramid
weights, from shuffled context noise. Unlike VidRD it denoises every frame at once, so its memory grows with
the video's length (RESULTS.md); `--freenoise-split` turns on diffusers' split inference to bound it.
VidRD temporal convolutions, a LoRA, a video VAE and per-frame motion GroupNorm have no place in that
pipeline and are refused in one line.
"""

from __future__ import annotations

import torch

from ldm_video.errors import LdmVideoError


def check_freenoise(model, lora: str | None, vae: str | None) -> None:
    """LdmVideoError unless the video model can run in diffusers' AnimateDiffPipeline unchanged."""
    if model.motion is None:
        raise LdmVideoError("--extend freenoise needs temporal attention (--motion with attn layers): FreeNoise "
                            "windows the motion modules")
    if model.temporal_convs is not None:
        raise LdmVideoError("--extend freenoise runs diffusers' AnimateDiffPipeline, which has no place for VidRD "
                            "temporal convolutions; use --extend vidrd, or a model trained with --temporal-layers attn")
    if model.config.motion_norm != "all-frames":
        raise LdmVideoError("--extend freenoise runs diffusers' all-frames motion GroupNorm; these temporal layers "
                            "were trained per frame (--motion-norm per-frame)")
    if lora:
        raise LdmVideoError("--extend freenoise does not take --lora yet (the LoRA lives in ldm-video's U-Net)")
    if vae:
        raise LdmVideoError("--extend freenoise decodes with the base's own VAE; drop --vae")


def freenoise_pipeline(base, model, scheduler, clip_frames: int, overlap: int, split: bool):
    """An AnimateDiffPipeline with FreeNoise on, from the loaded base and the video model's MotionAdapter.

    The video model gives its spatial U-Net back (and is unusable afterwards).
    """
    from diffusers import AnimateDiffPipeline

    adapter = model.motion
    unet2d = model.remove_temporal_layers()
    pipe = AnimateDiffPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet2d,
                               motion_adapter=adapter, scheduler=scheduler)
    pipe.set_progress_bar_config(leave=False)
    pipe.enable_free_noise(context_length=clip_frames, context_stride=max(1, clip_frames - overlap))
    if split:
        pipe.enable_free_noise_split_inference(spatial_split_size=256, temporal_split_size=clip_frames)
    return pipe


def freenoise_frames(pipe, prompt: str | dict[int, str], negative: str, num_frames: int, height: int, width: int,
                     steps: int, guidance: float, seed: int, decode_chunk: int, progress: bool) -> torch.Tensor:
    """The whole video, (f, 3, H, W) in [-1, 1] (FreeNoise needs every frame before any is final)."""
    pipe.set_progress_bar_config(disable=not progress, leave=False)
    with torch.no_grad():
        result = pipe(prompt, negative_prompt=negative or None, num_frames=num_frames, height=height, width=width,
                      num_inference_steps=steps, guidance_scale=guidance,
                      generator=torch.Generator("cpu").manual_seed(seed), output_type="pt",
                      decode_chunk_size=decode_chunk)
    return result.frames[0] * 2 - 1  # (f, 3, H, W): diffusers' "pt" output is in [0, 1]
