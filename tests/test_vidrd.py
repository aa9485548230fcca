"""VidRD schedule conventions (SPEC §4): FNR reversal, PNS variance, DSG hold steps and trajectory store."""

from __future__ import annotations

import pytest
import torch

from ldm_video.infer.vidrd import (
    DSGTrajectory,
    VidRDConfig,
    dsg_hold_steps,
    is_held,
    next_clip_noise,
    source_frame,
)


def test_fnr_new_frame_j_starts_from_old_frame_n_minus_1_minus_j():
    prev = torch.randn(1, 4, 8, 3, 3, generator=torch.Generator().manual_seed(0))  # (b, c, N, h, w)
    new = next_clip_noise(prev, overlap=4, pns_alpha=4.0, generator=torch.Generator().manual_seed(1))
    assert new.shape == prev.shape
    for j in range(4):
        assert source_frame(j, 8) == 7 - j
        torch.testing.assert_close(new[:, :, j], prev[:, :, 7 - j], rtol=0, atol=0)
    assert not torch.allclose(new[:, :, 4], prev[:, :, 3])  # PNS frames are not copies


def test_pns_is_old_frame_plus_scaled_fresh_noise():
    prev = torch.randn(1, 4, 8, 3, 3, generator=torch.Generator().manual_seed(0))
    a = 2.0
    new = next_clip_noise(prev, overlap=3, pns_alpha=a, generator=torch.Generator().manual_seed(1))
    fresh = new[:, :, 3:] - a / (1 + a * a) ** 0.5 * prev.flip(2)[:, :, 3:]  # e_j
    # e_j is the generator's N(0, I) draw times 1/sqrt(1+a^2)
    expected = torch.randn(1, 4, 5, 3, 3, generator=torch.Generator().manual_seed(1)) / (1 + a * a) ** 0.5
    torch.testing.assert_close(fresh, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 4.0])
def test_pns_keeps_variance_one_and_correlation(alpha):
    g = torch.Generator().manual_seed(0)
    prev = torch.randn(1, 4, 8, 64, 64, generator=g)
    new = next_clip_noise(prev, overlap=4, pns_alpha=alpha, generator=g)
    pns = new[:, :, 4:]  # (1, 4, 4, 64, 64)
    assert abs(pns.mean().item()) < 0.02
    assert abs(pns.var().item() - 1.0) < 0.03
    for j in range(4, 8):
        old = prev[:, :, 7 - j].flatten()
        corr = torch.corrcoef(torch.stack([new[:, :, j].flatten(), old]))[0, 1].item()
        assert abs(corr - alpha / (1 + alpha * alpha) ** 0.5) < 0.04


def test_dsg_holds_20_15_10_5_at_m4_t50_beta04():
    assert dsg_hold_steps(50, 4, 0.4) == [20, 15, 10, 5]
    holds = dsg_hold_steps(50, 4, 0.4)
    assert [sum(is_held(j, k, holds) for k in range(50)) for j in range(4)] == [20, 15, 10, 5]
    assert is_held(0, 19, holds) and not is_held(0, 20, holds)
    assert not is_held(4, 0, holds)  # frames j >= M are never held


def test_dsg_edge_cases():
    assert dsg_hold_steps(50, 4, 0.0) == [0, 0, 0, 0]
    assert dsg_hold_steps(50, 4, 1.0) == [50, 38, 25, 13]  # k < 37.5 holds 38 steps
    assert dsg_hold_steps(4, 4, 0.4) == [2, 2, 1, 1]  # k < 1.6, 1.2, 0.8, 0.4
    assert dsg_hold_steps(10, 0, 0.4) == []


def test_dsg_trajectory_stores_only_held_frames_and_steps():
    holds = dsg_hold_steps(4, 2, 1.0)  # [4, 2]
    traj = DSGTrajectory(clip_frames=5, holds=holds)
    steps = [torch.full((1, 2, 5, 2, 2), float(k)) + torch.arange(5.0).view(1, 1, 5, 1, 1) for k in range(4)]
    for k, z in enumerate(steps):
        traj.record(k, z)
    frame_bytes = 1 * 2 * 2 * 2 * 4
    assert traj.nbytes() == (4 + 2) * frame_bytes
    for k in range(4):
        z = torch.full((1, 2, 5, 2, 2), -1.0)
        traj.apply(k, z)
        assert torch.all(z[:, :, 0] == k + 4)  # new frame 0 <- old frame 4 at step k
        assert torch.all(z[:, :, 1] == (k + 3 if k < 2 else -1))  # new frame 1 <- old frame 3 for 2 steps
        assert torch.all(z[:, :, 2:] == -1)
    assert traj.nbytes() == 0  # everything applied is freed


def test_forward_order_replays_the_last_m_frames_in_time_order():
    prev = torch.randn(1, 4, 8, 32, 32, generator=torch.Generator().manual_seed(0))  # (b, c, N, h, w)
    a = 4.0
    new = next_clip_noise(prev, overlap=4, pns_alpha=a, generator=torch.Generator().manual_seed(1), order="forward")
    assert [source_frame(j, 8, 4, "forward") for j in range(8)] == [4, 5, 6, 7, 0, 1, 2, 3]
    for j in range(4):  # FNR: new frame j is old frame 4 + j, unchanged
        torch.testing.assert_close(new[:, :, j], prev[:, :, 4 + j], rtol=0, atol=0)
    for j in range(4, 8):  # PNS on old frame j - 4, variance kept
        corr = torch.corrcoef(torch.stack([new[:, :, j].flatten(), prev[:, :, j - 4].flatten()]))[0, 1].item()
        assert abs(corr - a / (1 + a * a) ** 0.5) < 0.05
        assert abs(new[:, :, j].var().item() - 1.0) < 0.1


def test_forward_order_holds_the_old_last_frame_longest():
    assert dsg_hold_steps(50, 4, 0.4, "forward") == [5, 10, 15, 20]
    holds = dsg_hold_steps(4, 2, 1.0, "forward")  # [2, 4]
    traj = DSGTrajectory(clip_frames=5, holds=holds, order="forward")
    for k in range(4):
        traj.record(k, torch.full((1, 2, 5, 2, 2), float(k)) + torch.arange(5.0).view(1, 1, 5, 1, 1))
    for k in range(4):
        z = torch.full((1, 2, 5, 2, 2), -1.0)
        traj.apply(k, z)
        assert torch.all(z[:, :, 0] == (k + 3 if k < 2 else -1))  # new frame 0 <- old frame 3 for 2 steps
        assert torch.all(z[:, :, 1] == k + 4)  # new frame 1 <- old last frame 4 for all 4 steps
    assert traj.nbytes() == 0


def test_config_validation():
    with pytest.raises(ValueError):
        VidRDConfig(clip_frames=8, overlap=8)
    with pytest.raises(ValueError):
        VidRDConfig(dsg_beta=1.5)
    with pytest.raises(ValueError):
        VidRDConfig(pns_alpha=-1)
    with pytest.raises(ValueError):
        VidRDConfig(order="backwards")
