"""PSNR / SSIM / flicker and the VAE losses: known values."""

from __future__ import annotations

import math

import pytest
import torch

from ldm_video.vae.losses import frame_differences, kl_per_pixel, temporal_loss
from ldm_video.vae.metrics import flicker, psnr, ssim


def test_psnr_known_value_and_identity():
    x = torch.zeros(1, 3, 2, 16, 16)  # 0.5 grey on [0, 1]
    y = x + 0.2  # 0.1 brighter on [0, 1] -> MSE 0.01 -> 20 dB
    assert psnr(y, x) == pytest.approx(20.0, abs=1e-4)
    assert psnr(x, x) == pytest.approx(100.0)  # MSE floored at 1e-10


def test_ssim_identity_and_ordering():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 2, 32, 32, generator=g) * 2 - 1
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-5)
    small = ssim(x + 0.05 * torch.randn(x.shape, generator=g), x)
    large = ssim(x + 0.5 * torch.randn(x.shape, generator=g), x)
    assert 1.0 > small > large


def test_flicker_and_temporal_loss():
    video = torch.zeros(1, 3, 4, 8, 8)
    video[:, :, 1::2] = 1.0  # frames alternate 0.5 and 1.0 on [0, 1]
    assert flicker(video) == pytest.approx(0.5)
    assert flicker(video[:, :, :1]) == 0.0
    assert frame_differences(video).shape == (1, 3, 3, 8, 8)
    assert float(temporal_loss(video, video)) == 0.0
    static = video[:, :, :1].expand_as(video)
    assert float(temporal_loss(static, video)) == pytest.approx(1.0)


def test_kl_is_zero_for_the_prior():
    mean, logvar = torch.zeros(2, 4, 3, 4, 4), torch.zeros(2, 4, 3, 4, 4)
    assert float(kl_per_pixel(mean, logvar, 3 * 9 * 32 * 32)) == 0.0
    kl = kl_per_pixel(torch.ones(2, 4, 3, 4, 4), logvar, 100)
    assert float(kl) == pytest.approx(0.5 * 4 * 3 * 4 * 4 / 100)
    assert math.isfinite(float(kl))


def test_to_uint8_frames_layout():
    from ldm_video.vae import to_uint8_frames

    video = torch.zeros(1, 3, 2, 4, 5)
    video[:, 0, 1] = 1.0  # frame 1 red at full
    video[:, 2] = -2.0  # blue below range: clamped to 0
    out = to_uint8_frames(video)
    assert out.dtype == torch.uint8 and out.shape == (1, 2, 4, 5, 3)
    assert out[0, 1, 0, 0].tolist() == [255, 128, 0] and out[0, 0, 0, 0].tolist() == [128, 128, 0]
