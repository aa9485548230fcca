"""History guidance for `generate --extend context`: guidance's rows without the given frames (noised to the step,
or the new frames alone), and the given frames weighed apart from the prompt (`--history-scale`); after Song et
al. 2025, "History-Guided Video Diffusion" (arXiv 2502.06764)."""

from __future__ import annotations

import pytest
import torch

from ldm_video import inflate_unet, load_base
from ldm_video.infer.pipeline import LongVideoConfig, SamplingConfig, VideoSampler
from ldm_video.infer.vidrd import VidRDConfig
from tests.test_context_frames import _Recorder
from tests.test_generate import randomise_temporal


@pytest.mark.parametrize("scheduler", ["ddim", "euler"])
def test_history_guidance_runs_the_unconditional_row_without_the_given_frames(tiny_base, scheduler):
    """context_guidance: in a later clip the guidance's unconditional row has no given frames; its first M frames
    follow the previous clip's last frames' forward process, sqrt(abar_t) z + sqrt(1 - abar_t) eps, one eps per
    clip, at the step's timestep; the conditional row is given them clean as before; without it, both rows are."""
    parts = load_base(tiny_base, components=("unet", "vae", "scheduler"))
    model = inflate_unet(parts.unet).eval()
    randomise_temporal(model)
    text = torch.randn(2, 77, 32)
    config = {**dict(parts.scheduler.config), "timestep_spacing": "linspace"}  # Euler: fractional timesteps
    calls, out = {}, {}
    for free in (False, True):
        rec = _Recorder(model)
        video = LongVideoConfig(num_frames=10, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2),
                                seam_drop=2, context_guidance=free, history_free="noised")
        sampler = VideoSampler(model=rec, vae=parts.vae, scheduler_config=config, sampling=SamplingConfig(
            scheduler=scheduler, steps=3, guidance=3.0, height=16, width=16), video=video, progress=False)
        out[free] = torch.cat([c.latents for c in sampler(text)], dim=2)  # (1, 4, 10, h, w)
        calls[free] = rec.calls
    given = out[True][:, :, 4:6]  # the first clip's last 2 latents
    assert torch.equal(out[False][:, :, :6], out[True][:, :, :6])  # the first clip has nothing to guide by
    assert not torch.allclose(out[False][:, :, 6:], out[True][:, :, 6:], atol=1e-4)
    noises = []
    for (x, t), (x_plain, t_plain) in zip(calls[True][3:], calls[False][3:]):  # clip 2's steps
        assert torch.equal(x[1:, :, :2], given) and (t[1, :2] == 0).all()  # the conditional row: given, clean
        assert torch.equal(x_plain[:, :, :2], given.expand(2, -1, -1, -1, -1)) and (t_plain[:, :2] == 0).all()
        assert (t[0] == t[0, -1]).all()  # the unconditional row: every frame at the step's t
        if t[0, -1] == 0:  # a last step at t = 0: nothing to leave out, both rows are given them
            assert torch.equal(x[0, :, :2], given[0])
            continue
        abar = sampler.noise_schedule.alphas_cumprod[round(float(t[0, -1]))]
        noises.append((x[0, :, :2] - abar.sqrt() * given[0]) / (1 - abar).sqrt())  # the noise that was added
    assert len(noises) >= 2 and all(torch.allclose(n, noises[0], atol=1e-4) for n in noises[1:])  # one per clip
    # given frames noised to their own timestep (--context-noise): once a step is no noisier, both rows keep them
    rec = _Recorder(model)
    video = LongVideoConfig(num_frames=10, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2), seam_drop=2,
                            context_guidance=True, context_noise=400, history_free="noised")
    list(VideoSampler(model=rec, vae=parts.vae, scheduler_config=config, sampling=SamplingConfig(
        scheduler=scheduler, steps=3, guidance=3.0, height=16, width=16), video=video, progress=False)(text))
    later = rec.calls[3:]
    assert all((t[1, :2] == 400).all() for _, t in later)
    assert all(((t[0, :2] == 400).all() and torch.equal(x[0, :, :2], x[1, :, :2])) == (float(t[0, -1]) <= 400)
               for x, t in later) and any(float(t[0, -1]) <= 400 for _, t in later)
    assert 0.7 < noises[0].std().item() < 1.3
    with pytest.raises(ValueError, match="context_guidance"):
        LongVideoConfig(extend="vidrd", context_guidance=True)


def test_history_scale_weighs_the_given_frames_apart_from_the_prompt(tiny_base):
    """history_scale: a third row, the prompt without the given frames; eps = e(-, -) + g (e(p, -) - e(-, -))
    + w (e(p, h) - e(p, -)), which at w = g is history guidance's two rows again."""
    parts = load_base(tiny_base, components=("unet", "vae", "scheduler"))
    model = inflate_unet(parts.unet).eval()
    randomise_temporal(model)
    text = torch.randn(2, 77, 32)
    out, calls, texts = {}, {}, {}
    for scale in (None, 3.0, 6.0):
        rec = _Recorder(model)
        video = LongVideoConfig(num_frames=10, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2),
                                seam_drop=2, context_guidance=True, context_noise=50, history_scale=scale,
                                history_free="noised")
        sampler = VideoSampler(model=rec, vae=parts.vae, scheduler_config=dict(parts.scheduler.config),
                               sampling=SamplingConfig(steps=3, guidance=3.0, height=16, width=16), video=video,
                               progress=False)
        out[scale] = torch.cat([c.latents for c in sampler(text)], dim=2)  # (1, 4, 10, h, w)
        calls[scale], texts[scale] = rec.calls, rec.texts
    assert torch.allclose(out[None], out[3.0], atol=1e-4)  # w = g: the two-row guidance
    assert not torch.allclose(out[None][:, :, 6:], out[6.0][:, :, 6:], atol=1e-3)
    assert torch.equal(out[None][:, :, :6], out[6.0][:, :, :6])  # the first clip has no given frames: two rows
    assert [x.shape[0] for x, _ in calls[6.0]] == [2] * 3 + [3] * 3
    given = out[6.0][:, :, 4:6]
    later = 0
    for x, t in calls[6.0][3:]:  # clip 2: rows 0 and 1 without the given frames (noised to t), row 2 with them
        assert torch.equal(x[0, :, :2], x[1, :, :2]) and torch.equal(t[0], t[1]) and (t[2, :2] == 50).all()
        if t[1, -1] > 50:
            assert (t[1] == t[1, -1]).all() and not torch.equal(x[2, :, :2], x[1, :, :2])
        else:  # no noisier than their own noise: every row keeps them as given
            later += 1
            assert (t[:, :2] == 50).all() and torch.equal(x[2, :, :2], x[1, :, :2])
    assert later >= 1
    # rows [negative, prompt, prompt]: the middle row is the prompt without the given frames
    assert all(torch.equal(e, torch.stack([text[0], text[1], text[1]])) for e in texts[6.0][3:])
    assert not torch.equal(calls[6.0][3][0][2, :, :2], given[0])  # noised to --context-noise, not clean
    with pytest.raises(ValueError, match="guidance 1 .<= 1. turns off"):
        VideoSampler(model=model, vae=parts.vae, scheduler_config=dict(parts.scheduler.config),
                     sampling=SamplingConfig(steps=3, guidance=1.0, height=16, width=16), video=video)
    with pytest.raises(ValueError, match="with context_guidance"):
        LongVideoConfig(num_frames=10, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2), seam_drop=2,
                        history_scale=6.0)


def test_history_free_dropped_runs_the_rows_without_history_on_the_new_frames_alone(tiny_base):
    """history_free "dropped": the rows without the given frames are a clip of the new frames alone (all at the
    step's t, the negative and, with history_scale, the prompt), the row with them runs all N as before; once a
    step is no noisier than the given frames' own noise every row keeps them (as "noised" does). An image model
    (temporal layers at their zero init) predicts each frame alone, so there dropping them changes nothing."""
    parts = load_base(tiny_base, components=("unet", "vae", "scheduler"))
    text = torch.randn(2, 77, 32)

    def sample(model, free, scale=None):
        rec = _Recorder(model)
        video = LongVideoConfig(num_frames=10, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2),
                                seam_drop=2, context_guidance=True, context_noise=50, history_scale=scale,
                                history_free=free)
        sampler = VideoSampler(model=rec, vae=parts.vae, scheduler_config=dict(parts.scheduler.config),
                               sampling=SamplingConfig(steps=3, guidance=3.0, height=16, width=16), video=video,
                               progress=False)
        return torch.cat([c.latents for c in sampler(text)], dim=2), rec  # (1, 4, 10, h, w)

    image = inflate_unet(parts.unet).eval()
    assert torch.allclose(sample(image, "noised")[0], sample(image, "dropped")[0], atol=1e-5)
    model = inflate_unet(load_base(tiny_base, components=("unet",)).unet).eval()
    randomise_temporal(model)
    noised, _ = sample(model, "noised")
    for scale, n_free in ((None, 1), (6.0, 2)):
        dropped, rec = sample(model, "dropped", scale)
        assert torch.equal(dropped[:, :, :6], noised[:, :, :6])  # the first clip has nothing to drop
        if scale is None:
            assert not torch.allclose(dropped[:, :, 6:], noised[:, :, 6:], atol=1e-4)
        i, steps = 3, 0  # clip 2's calls
        while i < len(rec.calls):
            (x, t), emb = rec.calls[i], rec.texts[i]
            if x.shape[2] == 6 and x.shape[0] == n_free + 1:  # a step at t <= 50: one call, every row given them
                assert (t[:, :2] == 50).all() and all(torch.equal(x[0, :, :2], x[r, :, :2]) for r in range(n_free))
                i += 1
                continue
            steps += 1  # one U-Net call of two clips: the rows without the given frames, the 4 new frames alone at
            assert i in rec.joint  # the step's t, then the row with them (all 6)
            assert x.shape[:3] == (n_free, 4, 4) and (t == t.flatten()[0]).all() and (t > 50).all()
            assert torch.equal(emb, text[:1] if scale is None else torch.stack([text[0], text[1]]))
            (x, t_given), emb = rec.calls[i + 1], rec.texts[i + 1]
            assert x.shape[:3] == (1, 4, 6) and (t_given[0, :2] == 50).all() and (t_given[0, 2:] == t[0, 0]).all()
            assert torch.equal(emb, text[1:])
            i += 2
        assert steps == 2
    with pytest.raises(ValueError, match="history_free"):
        LongVideoConfig(num_frames=10, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2), seam_drop=2,
                        context_guidance=True, history_free="none")
