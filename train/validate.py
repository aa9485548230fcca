"""Validation during training: sample short videos from the model being trained and write them as mp4.

DDIM sampling (Song et al. 2021) with classifier-free guidance; the initial latent noise comes from the same
PYoCo prior as the training noise (SPEC §3, "use in sampling"). Runs on its own seeded generator, under
`torch.random.fork_rng`, so it never changes the training run's random stream.
"""

from __future__ import annotations

import gc
from pathlib import Path

import torch
from einops import rearrange
from ldm_video.train.encode import decode_video
from ldm_video.train.writer import write_video

from ldm_video.noise import video_noise


@torch.no_grad()
def sample_latents(
    model,
    scheduler_config: dict,
    text: torch.Tensor,
    negative: torch.Tensor,
    shape: tuple[int, int, int, int, int],
    steps: int,
    guidance: float,
    prior: str,
    alpha: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """DDIM with CFG: text / negative (b, seq, dim) -> latents of `shape` (b, 4, f, h, w)."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(steps)
    device, dtype = text.device, text.dtype
    latents = video_noise(shape, prior, alpha, generator=generator, device=device, dtype=torch.float32)
    latents = latents * scheduler.init_noise_sigma  # (b, 4, f, h, w)
    cond = torch.cat([negative, text]).to(device, dtype)  # (2b, seq, dim)
    for t in scheduler.timesteps:  # step: one DDIM update
        x = torch.cat([latents, latents]).to(dtype)  # (2b, 4, f, h, w)
        pred = model(x, t, cond).sample.float()  # (2b, 4, f, h, w)
        uncond, text_pred = pred.chunk(2)
        pred = uncond + guidance * (text_pred - uncond)  # classifier-free guidance
        latents = scheduler.step(pred, t, latents).prev_sample  # (b, 4, f, h, w)
    return latents


def write_validation_videos(
    model,
    vae,
    scheduler_config: dict,
    prompts: list[str],
    prompt_embeds: torch.Tensor,
    empty_embed: torch.Tensor,
    out_dir: Path,
    step: int,
    num_frames: int,
    resolution: tuple[int, int],
    steps: int,
    guidance: float,
    prior: str,
    alpha: float,
    seed: int,
) -> list[Path]:
    """One mp4 per prompt in `out_dir` (step-NNNNNNN-<i>.mp4); frees its tensors afterwards."""
    paths = []
    was_training = model.training
    model.eval()
    device = prompt_embeds.device
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for i, prompt in enumerate(prompts):  # step: sample, decode and write one video
                generator = torch.Generator().manual_seed(seed + i)
                h, w = resolution[0] // 8, resolution[1] // 8
                latents = sample_latents(model, scheduler_config, prompt_embeds[i:i + 1], empty_embed[None],
                                         (1, 4, num_frames, h, w), steps, guidance, prior, alpha, generator)
                pixels = decode_video(vae, latents)[0]  # (3, f, H, W) in [-1, 1]
                frames = ((pixels.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
                frames = rearrange(frames, "c f h w -> f h w c").cpu().numpy()  # (f, H, W, 3)
                paths.append(write_video(out_dir / f"step-{step:07d}-{i}.mp4", frames, fps=8))
                del latents, pixels, frames
    finally:
        model.train(was_training)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    (out_dir / "prompts.txt").write_text("\n".join(prompts) + "\n")
    return paths
