"""Does a motion module prefer the direction it was taught? A denoising-loss probe on the toy world.

Sampling clips and scoring their direction (`ldm_video.toy.motion_eval`) is what the demo reports, but it is
slow and close to all-or-nothing per clip: a small recipe samples at chance for hundreds of steps. This probe
asks the model directly, as a likelihood comparison (the diffusion loss is a bound on the negative
log-likelihood, Ho et al. 2020): on toy clips moving the taught way, it compares the loss of the video U-Net
with the loss on the same clips played backwards, with the noise reversed along with them, at the same
timesteps. The image model run per frame (fresh temporal layers) scores both exactly the same, because
reversing the frames commutes with a per-frame model; so any gap is what the temporal layers learnt. A gap > 0
on most clips means the model prefers the taught direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ldm_video.toy.world import WorldConfig, sample

PROBE_SEEDS = 20_000_000  # clip seeds from here: away from the training data's (`write_folder` seeds)


@dataclass(frozen=True)
class DirectionPreference:
    """How much better a model denoises clips played the taught way than played backwards."""

    relative_gap: float  # (loss backwards - loss forwards) / loss forwards, over all clips and timesteps
    prefers: float  # share of clips whose loss (mean over timesteps) is lower played forwards
    clips: int


def reversal_gaps(model, scheduler, prediction_type: str, latents: torch.Tensor, text: torch.Tensor,
                  timesteps: list[int], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-clip losses forwards and the gap backwards - forwards, each float (len(timesteps), b).

    latents: (b, c, f, h, w) clean latents of clips moving the taught way; text: (b, seq, dim).
    """
    from ldm_video.train import objective

    forwards, gaps = [], []
    reversed_latents = latents.flip(2)  # (b, c, f, h, w) played backwards
    for t in timesteps:
        noise = torch.randn(latents.shape, generator=generator)  # (b, c, f, h, w) iid
        tt = torch.full((latents.shape[0],), t, dtype=torch.long)
        losses = []
        for x0, eps in ((latents, noise), (reversed_latents, noise.flip(2))):
            x_t = objective.noisy_latents(scheduler, x0, eps, tt)  # (b, c, f, h, w)
            target = objective.training_target(prediction_type, scheduler, x0, eps, tt)
            pred = model(x_t, tt, text).sample.float()
            losses.append((pred - target.float()).pow(2).mean(dim=(1, 2, 3, 4)))  # (b,)
        forwards.append(losses[0])
        gaps.append(losses[1] - losses[0])
    return torch.stack(forwards), torch.stack(gaps)


@torch.no_grad()
def direction_preference(base: str, motion: str | None, direction: str, shape: str, clips: int = 32,
                         frames: int = 4, min_speed: float = 2.0, max_speed: float = 4.0,
                         timesteps: tuple[int, ...] = (100, 300, 500, 700, 900), repeats: int = 2,
                         seed: int = 0) -> DirectionPreference:
    """The probe on `clips` toy clips of `shape` in every colour moving `direction` (see the module docstring).

    Args:
        base: toy base folder; motion: temporal layers (a `train` output folder), None for fresh ones.
        repeats: noise draws per timestep.
    """
    from ldm_video.base import load_base
    from ldm_video.infer.model import load_video_model
    from ldm_video.text import encode_prompts
    from ldm_video.train.encode import encode_video

    parts = load_base(base, components=("unet", "vae", "text_encoder", "tokenizer", "scheduler"))
    world = WorldConfig(motions=(direction,), shapes=(shape,), min_speed=min_speed, max_speed=max_speed)
    items = [sample(PROBE_SEEDS + seed * 100_003 + i, frames, world) for i in range(clips)]
    pixels = torch.from_numpy(np.stack([item.frames for item in items])).float() / 127.5 - 1  # (b, f, H, W, 3)
    pixels = pixels.permute(0, 4, 1, 2, 3).contiguous()  # (b, 3, f, H, W)
    generator = torch.Generator().manual_seed(seed)
    latents = encode_video(parts.vae, pixels, generator).float()  # (b, 4, f, h, w)
    text = encode_prompts(parts.tokenizer, parts.text_encoder, [item.caption for item in items])  # (b, seq, dim)
    model = load_video_model(parts, motion, None, 1.0)
    forwards, gaps = reversal_gaps(model, parts.scheduler, parts.prediction_type, latents, text,
                                   list(timesteps) * repeats, generator)  # (T, b) each
    return DirectionPreference(relative_gap=float(gaps.mean() / forwards.mean()),
                               prefers=float((gaps.mean(dim=0) > 0).float().mean()), clips=clips)
