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


def sample_timesteps(batch: int, num_train_timesteps: int, generator: torch.Generator,
                     device: torch.device | str) -> torch.Tensor:
    """t ~ U{0, ..., T-1} per sample -> long (b,)."""
    t = torch.randint(0, num_train_timesteps, (batch,), generator=generator)  # (b,) drawn on the CPU
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


def diffusion_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error in float32 (a scalar)."""
    return F.mse_loss(prediction.float(), target.float(), reduction="mean")
