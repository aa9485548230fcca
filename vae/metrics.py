"""Reconstruction metrics for video VAEs: PSNR, SSIM (Wang et al. 2004, Gaussian window 11, sigma 1.5) and
flicker (SPEC §7: mean |x_{t+1} - x_t| over consecutive frames), as pure functions.

Video is (b, 3, f, H, W) in [-1, 1]; PSNR and SSIM are computed on [0, 1] values per frame and averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange


def to_unit(video: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (as a decoded frame is clamped before it is written)."""
    return ((video.float() + 1) / 2).clamp(0, 1)


def psnr(recon: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB, per frame then averaged (peak 1 on [0, 1] values)."""
    a = rearrange(to_unit(recon), "b c f h w -> (b f) (c h w)")
    b = rearrange(to_unit(target), "b c f h w -> (b f) (c h w)")
    mse = (a - b).pow(2).mean(dim=1).clamp_min(1e-10)  # ((b f),)
    return float((10 * torch.log10(1.0 / mse)).mean())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x.pow(2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size)


def ssim(recon: torch.Tensor, target: torch.Tensor, window: int = 11) -> float:
    """Mean structural similarity (Wang et al. 2004, eq. 13; C1 = (0.01)^2, C2 = (0.03)^2 on [0, 1])."""
    a = rearrange(to_unit(recon), "b c f h w -> (b f) c h w")
    b = rearrange(to_unit(target), "b c f h w -> (b f) c h w")
    size = min(window, a.shape[-1], a.shape[-2])
    w = _gaussian_window(size).to(a)
    w = w.expand(a.shape[1], 1, size, size).contiguous()  # depthwise, one window per channel

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, groups=a.shape[1])  # valid windows only

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a.pow(2)
    var_b = blur(b * b) - mu_b.pow(2)
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.pow(2) + mu_b.pow(2) + c1) * (var_a + var_b + c2))
    return float(s.mean())


def flicker(video: torch.Tensor) -> float:
    """Mean |x_{t+1} - x_t| over consecutive frames of (b, 3, F, H, W) in [-1, 1], on [0, 1] values (0 for a single
    frame): `ldm_video.video_metrics.flicker` of each clip, averaged."""
    from ldm_video.video_metrics import flicker as video_flicker

    frames = rearrange(to_unit(video), "b c f h w -> b f h w c").cpu().numpy()
    return sum(video_flicker(clip) for clip in frames) / len(frames)
