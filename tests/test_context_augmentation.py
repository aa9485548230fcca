"""Augmenting the given frames in training: noise (`train --context-noise`, SVD / Diffusion Forcing style) and
slower replay (`train --context-slowdown`)."""

from __future__ import annotations

import json

import torch

from ldm_video.cli import main
from ldm_video.train import objective
from tests.test_context_frames import _train_args

# -- noise on the given frames (train --context-noise) ------------------------------------------------------

def test_given_frames_can_be_noised_to_their_own_timestep():
    g = torch.Generator().manual_seed(0)
    t_c = objective.context_timesteps(4000, 200, g, "cpu")  # (b,)
    assert t_c.min() == 0 and t_c.max() == 200 and abs(t_c.float().mean().item() - 100) < 4
    context, x_t = torch.randn(2, 4, 5, 2, 2), torch.randn(2, 4, 5, 2, 2)
    mask = torch.tensor([[True, True, False, False, False], [True, True, False, False, False]])
    x, t = objective.with_context(x_t, context, torch.tensor([500, 300]), mask, torch.tensor([40, 0]))
    assert torch.equal(x[:, :, :2], context[:, :, :2]) and torch.equal(x[:, :, 2:], x_t[:, :, 2:])
    assert t.tolist() == [[40, 40, 500, 500, 500], [0, 0, 300, 300, 300]]


def test_training_with_context_noise_records_it_and_needs_context_frames(tiny_base, toy_data, tmp_path, capsys,
                                                                          monkeypatch):
    seen = []
    real_with = objective.with_context

    def spy_with(x_t, context, timesteps, given, context_t=None):
        seen.append(context_t)
        return real_with(x_t, context, timesteps, given, context_t)

    monkeypatch.setattr(objective, "with_context", spy_with)
    out = tmp_path / "run"
    assert main(_train_args(tiny_base, toy_data, out, "--context-frames", "2", "--context-noise", "150")) == 0
    assert all(t is not None and ((0 <= t) & (t <= 150)).all() for t in seen) and len(seen) == 2
    record = json.loads((out / "temporal_config.json").read_text())
    assert record["metadata"]["context_noise"] == 150
    assert main(_train_args(tiny_base, toy_data, tmp_path / "bad", "--context-noise", "100")) == 2
    assert "needs --context-frames" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


# -- given frames replayed slower (train --context-slowdown) -------------------------------------------------

def test_slowed_given_frames_end_on_the_real_last_one_and_leave_the_rest():
    """Each slowed clip's given frames are real frames in order, ending on the real last given frame, at one speed
    in [0, 1) of the real one; the frames after them and the clips not drawn are untouched."""
    frames = torch.arange(6.0)[None, None, :, None, None]  # (1, 1, 6, 1, 1): a latent that is its frame index
    latents = (frames + 10 * torch.arange(4000.0)[:, None, None, None, None]).expand(4000, 2, 6, 1, 1)  # (b, 2, 6, 1, 1)
    out = objective.slowed_context(latents, 4, 0.5, torch.Generator().manual_seed(0))
    index = (out - 10 * torch.arange(4000.0)[:, None, None, None, None])[:, 0, :, 0, 0]  # (b, 6): the real frame shown
    assert torch.equal(out[:, 1], out[:, 0]) and torch.equal(index[:, 4:], frames[0, 0, 4:, 0, 0].expand(4000, 2))
    given = index[:, :4]  # (b, 4)
    assert (given[:, -1] == 3).all() and (given.diff(dim=1) >= 0).all()  # ends on the real last one, in order
    slowed = (given != torch.arange(4.0)).any(dim=1)  # (b,)
    # `prob` of the clips draw a speed; those above 5/6 round back to the real frames (round(3 - 3 s) = 0)
    assert abs(slowed.float().mean().item() - 0.5 * 5 / 6) < 0.03
    assert (given[slowed, 0] > 0).all() and (given == 3).all(dim=1).any()  # slower than real, down to a freeze
    assert torch.equal(objective.slowed_context(latents, 4, 0.0, torch.Generator().manual_seed(0)), latents)


def test_training_with_slowed_context_passes_it_and_needs_context_frames(tiny_base, toy_data, tmp_path, capsys,
                                                                         monkeypatch):
    calls = []
    real = objective.slowed_context

    def spy(latents, context_frames, prob, generator):
        calls.append((context_frames, prob))
        return real(latents, context_frames, prob, generator)

    monkeypatch.setattr(objective, "slowed_context", spy)
    assert main(_train_args(tiny_base, toy_data, tmp_path / "run", "--context-frames", "2",
                            "--context-slowdown", "0.5")) == 0
    assert calls == [(2, 0.5), (2, 0.5)]
    assert main(_train_args(tiny_base, toy_data, tmp_path / "bad", "--context-slowdown", "0.5")) == 2
    assert "needs --context-frames" in capsys.readouterr().err
    assert main(_train_args(tiny_base, toy_data, tmp_path / "bad", "--context-frames", "2",
                            "--context-slowdown", "1.5")) == 2
    assert "--context-slowdown must be in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
