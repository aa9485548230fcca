"""The diffusion training objective with video noise priors (PYoCo, Ge et al. 2023, §3 and eqs. 3-4).

The forward process `x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps` uses `eps` drawn from the chosen
prior instead of iid noise; the regression target is `eps` for epsilon models and
`v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0` for v-prediction models (Salimans & Ho 2022), as the base
model's scheduler config says. Pure functions; the noise schedule is the base's own DDPMScheduler.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ldm_video.noise import video_noise

TIMESTEP_BIAS = ("none", "earlier", "later")


def timestep_weights(num_train_timesteps: int, strategy: str = "none", multiplier: float = 1.0,
                     portion: float = 0.25) -> torch.Tensor:
    """Sampling weights of t = 0..T-1 -> float (T,), summing to 1.

    "none" is uniform; "later" multiplies the weight of the last `portion` of the timesteps (the noisiest,
    where layout and motion are decided) by `multiplier`, "earlier" the first `portion` (the fine detail) —
    the timestep-bias strategies of diffusers' SDXL training script, as a pure function.
    """
    if strategy not in TIMESTEP_BIAS:
        raise ValueError(f"unknown timestep bias {strategy!r}; choose from {', '.join(TIMESTEP_BIAS)}")
    if not (multiplier > 0 and 0 < portion <= 1):
        raise ValueError(f"timestep bias needs multiplier > 0 and 0 < portion <= 1, got {multiplier}, {portion}")
    weights = torch.ones(num_train_timesteps, dtype=torch.float64)  # (T,)
    n = max(1, round(portion * num_train_timesteps))
    if strategy == "later":
        weights[-n:] *= multiplier
    elif strategy == "earlier":
        weights[:n] *= multiplier
    return weights / weights.sum()


def sample_timesteps(batch: int, num_train_timesteps: int, generator: torch.Generator,
                     device: torch.device | str, weights: torch.Tensor | None = None) -> torch.Tensor:
    """t ~ U{0, ..., T-1} per sample, or t ~ `weights` (from `timestep_weights`) -> long (b,)."""
    if weights is None:
        t = torch.randint(0, num_train_timesteps, (batch,), generator=generator)  # (b,) drawn on the CPU
    else:
        t = torch.multinomial(weights, batch, replacement=True, generator=generator)  # (b,)
    return t.to(device)


def training_noise(latents: torch.Tensor, prior: str, alpha: float, generator: torch.Generator) -> torch.Tensor:
    """eps of the prior, shaped like latents (b, c, f, h, w); drawn on the CPU generator, same on every device."""
    return video_noise(latents.shape, prior, alpha, generator=generator, device=latents.device,
                       dtype=latents.dtype)  # (b, c, f, h, w)


def noisy_latents(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps  (DDPM eq. 4 with PYoCo's eps)."""
    return scheduler.add_noise(latents, noise, timesteps)  # (b, c, f, h, w)


def training_target(prediction_type: str, scheduler, latents: torch.Tensor, noise: torch.Tensor,
                    timesteps: torch.Tensor) -> torch.Tensor:
    """eps (epsilon models) or v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (v_prediction models)."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)  # (b, c, f, h, w)
    raise ValueError(f"unknown prediction type {prediction_type!r}")


def context_mask(batch: int, frames: int, context_frames: int, prob: float,
                 generator: torch.Generator) -> torch.Tensor:
    """Which frames are given clean: with probability `prob` a clip's first `context_frames` frames -> bool (b, f).

    Training with such clips (frame conditioning, as MCVD, Voleti et al. 2022, and LVDM's autoregressive
    extension, He et al. 2022) teaches the temporal layers to continue given frames, which is what a later
    clip of a long video does (`generate --extend context`).
    """
    given = torch.rand(batch, generator=generator) < prob  # (b,) drawn on the CPU, same on every device
    frame_idx = torch.arange(frames)  # (f,)
    return given[:, None] & (frame_idx[None, :] < context_frames)  # (b, f)


def context_timesteps(batch: int, max_timestep: int, generator: torch.Generator,
                      device: torch.device | str) -> torch.Tensor:
    """Noise level of each clip's given frames, t_c ~ U{0, ..., max_timestep} -> long (b,).

    Noise augmentation of the conditioning frames (SVD, Blattmann et al. 2023; Diffusion Forcing, Chen et al.
    2024): trained on given frames at a random small noise level, with that level as their timestep, the layers
    learn not to copy every flaw of the frames they continue, the error that accumulates over a long video.
    """
    return torch.randint(0, max_timestep + 1, (batch,), generator=generator).to(device)  # (b,) drawn on the CPU


def slowed_context(latents: torch.Tensor, context_frames: int, prob: float,
                   generator: torch.Generator) -> torch.Tensor:
    """History slow-down: in a `prob` share of the clips, the first `context_frames` latent frames (b, c, f, h, w)
    are replayed slower than they happened, ending on the real last one -> latents of the same shape.

    Each such clip draws a speed s ~ U[0, 1) (0 freezes the last given frame) and its given frame k of M shows real
    frame round(M-1 - (M-1-k) s); the frames after them keep their real speed. An augmentation of the conditioning
    frames in time, as noise augmentation (`context_timesteps`) is in value, meant to keep a long video's own
    hesitant frames (a stall at a turn) from stalling the next clip; on the toy world it made the layers leave a
    margin after a turn more often but did not raise long videos' pacing (benchmarks/RESULTS.md, "Where long
    videos lose the motion").
    """
    b, m = latents.shape[0], context_frames
    slow = torch.rand(b, generator=generator) < prob  # (b,) drawn on the CPU, same on every device
    speed = torch.rand(b, generator=generator)  # (b,)
    k = torch.arange(m)  # (M,)
    source = torch.round((m - 1) - (m - 1 - k[None, :]) * speed[:, None]).long()  # (b, M)
    source = torch.where(slow[:, None], source, k[None, :]).to(latents.device)  # (b, M): the real order when not
    replayed = latents[torch.arange(b, device=latents.device)[:, None], :, source]  # (b, M, c, h, w)
    out = latents.clone()
    out[:, :, :m] = replayed.permute(0, 2, 1, 3, 4)  # (b, c, M, h, w)
    return out


def with_context(x_t: torch.Tensor, context: torch.Tensor, timesteps: torch.Tensor, given: torch.Tensor,
                 context_t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The U-Net input and per-frame timesteps when `given` frames are given: (b, c, f, h, w), long (b, f).

    Given frames take `context` (the clean latents, or the latents noised to `context_t`) at timestep
    `context_t` (b,) (default 0: clean); the others keep x_t at the clip's timestep.
    """
    given = given.to(x_t.device)
    x = torch.where(given[:, None, :, None, None], context.to(x_t.dtype), x_t)  # (b, c, f, h, w)
    given_t = torch.zeros_like(timesteps) if context_t is None else context_t.to(timesteps)  # (b,)
    t = torch.where(given, given_t[:, None], timesteps[:, None])  # (b, f)
    return x, t


def diffusion_loss(prediction: torch.Tensor, target: torch.Tensor,
                   given: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error in float32 (a scalar), over the frames not `given` (bool (b, f)) when that is passed."""
    if given is None:
        return F.mse_loss(prediction.float(), target.float(), reduction="mean")
    error = (prediction.float() - target.float()).pow(2)  # (b, c, f, h, w)
    keep = (~given.to(error.device))[:, None, :, None, None].expand_as(error)  # (b, c, f, h, w)
    return error[keep].mean()
