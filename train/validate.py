"""Validation during training: sample short videos from the model being trained and write them as mp4.

One clip through `ldm_video.infer`'s `VideoSampler` (DDIM, classifier-free guidance, decoding with whichever
VAE training uses); the initial latent noise comes from the same PYoCo prior as the training noise
(SPEC §3, "use in sampling"). Runs on its own seeded generator, under
`torch.random.fork_rng`, so it never changes the training run's random stream.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import torch

from ldm_video.infer.pipeline import LongVideoConfig, SamplingConfig, VideoSampler
from ldm_video.infer.vidrd import VidRDConfig
from ldm_video.video_file import to_uint8, write_video


def write_validation_videos(model, vae, scheduler_config: dict, prompts: list[str], prompt_embeds: torch.Tensor,
                            empty_embed: torch.Tensor, out_dir: Path, step: int, num_frames: int,
                            sampling: SamplingConfig) -> list[Path]:
    """One mp4 per prompt in `out_dir` (step-NNNNNNN-<i>.mp4), a clip of `num_frames` sampled with `sampling` (prompt
    i with seed sampling.seed + i); frees its tensors afterwards."""
    paths = []
    was_training = model.training
    model.eval()
    device = prompt_embeds.device
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for i in range(len(prompts)):  # step: sample, decode and write one video
                one_prompt = replace(sampling, seed=sampling.seed + i)
                one_clip = LongVideoConfig(num_frames=num_frames, decode_chunk=num_frames,
                                           vidrd=VidRDConfig(clip_frames=num_frames, overlap=0))
                sampler = VideoSampler(model=model, vae=vae, scheduler_config=scheduler_config,
                                       sampling=one_prompt, video=one_clip, progress=False)
                text = prompt_embeds[i:i + 1]  # (1, seq, dim)
                if sampling.guidance > 1:
                    text = torch.cat([empty_embed[None].to(text), text])  # (2, seq, dim): [negative, prompt]
                pixels = torch.cat([chunk.frames for chunk in sampler(text)])  # (F, 3, H, W) in [-1, 1]
                frames = to_uint8(pixels).cpu().numpy()  # (F, H, W, 3)
                paths.append(write_video(out_dir / f"step-{step:07d}-{i}.mp4", frames, fps=8))
                del sampler, pixels, frames
    finally:
        model.train(was_training)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    (out_dir / "prompts.txt").write_text("\n".join(prompts) + "\n")
    return paths
