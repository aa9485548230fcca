"""Context frames: training the temporal layers to continue given clean frames (`train --context-frames`) and
long videos whose later clips are given the previous clip's last frames (`generate --extend context`)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ldm_video import inflate_unet, load_base, save_temporal
from ldm_video.cli import build_parser, main
from ldm_video.errors import LdmVideoError
from ldm_video.infer.pipeline import LongVideoConfig, SamplingConfig, VideoSampler
from ldm_video.infer.video_io import read_video
from ldm_video.infer.vidrd import VidRDConfig
from ldm_video.train import objective
from tests.test_generate import randomise_temporal

# -- the U-Net and the objective ----------------------------------------------------------------------------

def test_per_frame_timesteps_match_per_clip_ones_and_reach_each_frame(tiny_base):
    model = inflate_unet(load_base(tiny_base, components=("unet",)).unet).eval()
    randomise_temporal(model)
    g = torch.Generator().manual_seed(0)
    x, text = torch.randn(2, 4, 4, 8, 8, generator=g), torch.randn(2, 77, 32, generator=g)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        per_clip = model(x, t, text).sample
        per_frame = model(x, t[:, None].expand(2, 4), text).sample
        first_clean = model(x, torch.tensor([[0, 10, 10, 10], [0, 700, 700, 700]]), text).sample
    assert torch.equal(per_clip, per_frame)
    assert (first_clean - per_clip).abs().max() > 1e-4  # the timestep really is per frame
    with pytest.raises(ValueError, match="per-frame timesteps"):
        model(x, torch.zeros(2, 3, dtype=torch.long), text)


def test_context_mask_and_inputs():
    g = torch.Generator().manual_seed(0)
    given = objective.context_mask(4000, 8, 3, 0.25, g)  # (b, f)
    assert given.shape == (4000, 8) and not given[:, 3:].any()
    assert torch.equal(given[:, 0], given[:, 2])  # a clip gets all its context frames or none
    assert abs(given[:, 0].float().mean().item() - 0.25) < 0.03
    latents, x_t = torch.randn(2, 4, 5, 2, 2), torch.randn(2, 4, 5, 2, 2)
    mask = torch.tensor([[True, True, False, False, False], [False] * 5])
    x, t = objective.with_context(x_t, latents, torch.tensor([500, 300]), mask)
    assert torch.equal(x[0, :, :2], latents[0, :, :2]) and torch.equal(x[0, :, 2:], x_t[0, :, 2:])
    assert torch.equal(x[1], x_t[1])
    assert t.tolist() == [[0, 0, 500, 500, 500], [300] * 5]


def test_loss_leaves_the_given_frames_out():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 4, 5, 3, 3, generator=g), torch.randn(2, 4, 5, 3, 3, generator=g)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, :2] = True
    loss = objective.diffusion_loss(pred, target, mask)
    expected = torch.cat([(pred[0, :, 2:] - target[0, :, 2:]).flatten(), (pred[1] - target[1]).flatten()]).pow(2).mean()
    assert torch.allclose(loss, expected)
    changed = pred.clone()
    changed[0, :, :2] += 100.0  # whatever the model predicts for given frames costs nothing
    assert torch.equal(objective.diffusion_loss(changed, target, mask), loss)
    assert torch.equal(objective.diffusion_loss(pred, target, torch.zeros_like(mask)),
                       objective.diffusion_loss(pred, target))


# -- training -----------------------------------------------------------------------------------------------

def _train_args(tiny_base, data, out, *extra):
    return ["train", "--base", tiny_base, "--data", str(data), "--output-dir", str(out), "--frames", "4",
            "--resolution", "32", "--batch-size", "1", "--max-steps", "2", "--temporal-layers", "attn",
            "--images", "off", "--no-progress", *extra]


@pytest.fixture(scope="module")
def context_motion(tiny_base, toy_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ctx") / "run"
    assert main(_train_args(tiny_base, toy_data, out, "--context-frames", "2", "--context-prob", "1")) == 0
    return out


def test_training_records_the_context_frames_and_refuses_bad_values(tiny_base, toy_data, context_motion, tmp_path,
                                                                      capsys):
    record = json.loads((context_motion / "temporal_config.json").read_text())
    assert record["metadata"]["context_frames"] == 2 and record["metadata"]["context_prob"] == 1
    losses = [json.loads(line)["loss"] for line in (context_motion / "train_log.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)  # finite with every clip's first frames given
    assert main(_train_args(tiny_base, toy_data, tmp_path / "bad", "--context-frames", "4")) == 2
    assert "--context-frames must be in [0, --frames)" in capsys.readouterr().err
    for prob in ("1.5", "0"):
        assert main(_train_args(tiny_base, toy_data, tmp_path / "bad", "--context-frames", "2", "--context-prob",
                                prob)) == 2
        assert "--context-prob must be in (0, 1]" in capsys.readouterr().err
    assert main(_train_args(tiny_base, toy_data, tmp_path / "bad", "--context-prob", "0.3")) == 2
    assert "needs --context-frames" in capsys.readouterr().err  # not accepted and ignored
    assert not (tmp_path / "bad").exists()


def test_the_trainer_gives_the_model_clean_frames_at_timestep_0_and_scores_only_the_rest(tiny_base, toy_data,
                                                                                          tmp_path, monkeypatch):
    seen = []
    real_with, real_loss = objective.with_context, objective.diffusion_loss

    def spy_with(x_t, latents, timesteps, given, context_t=None):
        x, t = real_with(x_t, latents, timesteps, given, context_t)
        seen.append(("input", x, latents, t))
        return x, t

    def spy_loss(prediction, target, given=None):
        seen.append(("loss", given))
        return real_loss(prediction, target, given)

    monkeypatch.setattr(objective, "with_context", spy_with)
    monkeypatch.setattr(objective, "diffusion_loss", spy_loss)
    assert main(_train_args(tiny_base, toy_data, tmp_path / "run", "--context-frames", "3", "--context-prob", "1",
                            "--max-steps", "1")) == 0
    (_, x, latents, t), (_, given) = seen
    assert torch.equal(x[:, :, :3], latents[:, :, :3].to(x.dtype)) and (t[:, :3] == 0).all() and (t[:, 3:] > 0).all()
    assert given[:, :3].all() and not given[:, 3:].any()


# -- long videos --------------------------------------------------------------------------------------------

class _Recorder(torch.nn.Module):
    """Wraps a VideoUNet and keeps what each call was given."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.calls, self.texts, self.config, self.joint = model, [], [], model.config, []

    def forward(self, x, t, text):
        self.calls.append((x.clone(), torch.as_tensor(t).clone()))
        self.texts.append(text.clone())
        return self.inner(x, t, text)

    def forward_clips(self, clips):
        """Several clips in one U-Net call: kept as a call each, in batch order; `joint` holds where they start."""
        self.joint.append(len(self.calls))
        for clip in clips:
            self.calls.append((clip.sample.clone(), torch.as_tensor(clip.timestep).clone()))
            self.texts.append(clip.encoder_hidden_states.clone())
        return self.inner.forward_clips(clips)


@pytest.mark.parametrize("scheduler,guidance", [("ddim", 1.0), ("euler", 3.0), ("dpm++", 3.0)])
def test_later_clips_are_given_the_last_frames_of_the_one_before(tiny_base, scheduler, guidance):
    parts = load_base(tiny_base, components=("unet", "vae", "scheduler"))
    model = inflate_unet(parts.unet).eval()
    randomise_temporal(model)
    rec = _Recorder(model)
    video = LongVideoConfig(num_frames=10, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2), seam_drop=2)
    # linspace spacing (SD 2.1's own config has none): Euler's timesteps are then fractional
    config = {**dict(parts.scheduler.config), "timestep_spacing": "linspace"}
    sampler = VideoSampler(model=rec, vae=parts.vae, scheduler_config=config, sampling=SamplingConfig(
        scheduler=scheduler, steps=3, guidance=guidance, height=16, width=16), video=video, progress=False)
    text = torch.randn(2 if guidance > 1 else 1, 77, 32)
    chunks = list(sampler(text))
    latents = torch.cat([c.latents for c in chunks], dim=2)  # (1, 4, 10, h, w): 6, then 4 new frames
    assert latents.shape[2] == 10 == sum(c.frames.shape[0] for c in chunks) and video.num_clips == 2
    first_clip_last = latents[:, :, 4:6]
    batch = text.shape[0]
    for (x, t), (_, t_first) in zip(rec.calls[3:], rec.calls[:3]):  # clip 2's steps, clip 1's
        assert torch.equal(x[:, :, :2], first_clip_last.expand(batch, -1, -1, -1, -1))  # clean, every step, both
        assert t.shape == (batch, 6) and (t[:, :2] == 0).all() and (t[:, 2:] == t_first).all()  # t kept exactly
    assert all(t.ndim == 0 for _, t in rec.calls[:3])  # the first clip is denoised as usual
    with pytest.raises(ValueError, match="seam_drop == overlap"):
        LongVideoConfig(extend="context", vidrd=VidRDConfig(overlap=2), seam_drop=1)


def test_generate_continues_clips_for_a_context_trained_motion_by_default(tiny_base, context_motion, tmp_path):
    from ldm_video.infer.generate import build_configs

    common = ["generate", "--base", tiny_base, "--prompt", "a red square moving right", "--frames", "10",
              "--clip-frames", "4", "--steps", "2", "--height", "32", "--width", "32", "--no-progress"]
    out = tmp_path / "v.mp4"
    assert main([*common, "--motion", str(context_motion), "--out", str(out)]) == 0
    assert read_video(out).shape[0] == 10  # 4, then 2 new frames per clip: 4 clips
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["extend"] == "context" and sidecar["vidrd"]["overlap"] == 2 and sidecar["seam_drop"] == 2
    # a VidRD-only flag, or --extend vidrd, keeps VidRD; context flags that do not apply are refused
    _, video = build_configs(build_parser().parse_args([*common, "--motion", str(context_motion), "--out", "x.mp4",
                                                        "--pns-alpha", "1"]))
    assert video.extend == "vidrd"
    with pytest.raises(LdmVideoError, match="only apply to --extend vidrd"):
        build_configs(build_parser().parse_args([*common, "--extend", "context", "--dsg-beta", "0", "--out", "x.mp4"]))


def test_extend_context_refuses_layers_not_trained_for_it(tiny_base, tmp_path, capsys):
    plain = tmp_path / "plain"
    save_temporal(inflate_unet(load_base(tiny_base, components=("unet",)).unet), plain)
    common = ["generate", "--base", tiny_base, "--prompt", "x", "--frames", "6", "--clip-frames", "4", "--steps", "1",
              "--height", "16", "--width", "16", "--extend", "context", "--out", str(tmp_path / "v.mp4")]
    assert main([*common, "--motion", str(plain)]) == 2
    assert "train --context-frames" in capsys.readouterr().err
    assert main(common) == 2
    assert "untrained" in capsys.readouterr().err
    record = json.loads((plain / "temporal_config.json").read_text())
    record["metadata"]["context_frames"] = "four"
    (plain / "temporal_config.json").write_text(json.dumps(record))
    assert main([*common, "--motion", str(plain)]) == 2
    assert "not a whole number" in capsys.readouterr().err
    assert not (tmp_path / "v.mp4").exists()


def test_extend_context_names_the_flags_when_the_clip_is_too_short(tiny_base, context_motion, tmp_path, capsys):
    common = ["generate", "--base", tiny_base, "--prompt", "x", "--frames", "6", "--steps", "1", "--height", "16",
              "--width", "16", "--motion", str(context_motion), "--out", str(tmp_path / "v.mp4")]
    assert main([*common, "--clip-frames", "2"]) == 2  # trained with 2 context frames: nothing left to denoise
    err = capsys.readouterr().err
    assert "--clip-frames 2 must be larger" in err and "--context-frames 2" in err
    assert main([*common, "--clip-frames", "4", "--extend", "context", "--overlap", "0"]) == 2
    assert "--overlap" in capsys.readouterr().err


def test_one_frame_image_batches_train_beside_context_frames(tiny_base, toy_data, tmp_path):
    """--images frame: images are one-frame samples that skip the temporal layers, so they get no context."""
    import shutil

    from ldm_video.train.synthetic import write_test_image

    data = tmp_path / "mixed"
    shutil.copytree(toy_data, data)
    for i in range(2):
        write_test_image(data / f"still{i}.png", seed=i)
        (data / f"still{i}.txt").write_text("a red square")
    assert main(_train_args(tiny_base, data, tmp_path / "run", "--context-frames", "2", "--images", "frame",
                            "--image-share", "0.5", "--max-steps", "4")) == 0


# -- noise on the given frames at sampling (generate --context-noise; training: test_context_augmentation.py) --

def test_noised_given_frames_at_sampling(tiny_base):
    """extend "context" with context_noise: the given frames enter at that timestep, noised once per clip (the
    same noisy frames at every step), and the video keeps the clean ones."""
    parts = load_base(tiny_base, components=("unet", "vae", "scheduler"))
    model = inflate_unet(parts.unet).eval()
    randomise_temporal(model)
    rec = _Recorder(model)
    video = LongVideoConfig(num_frames=10, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2), seam_drop=2,
                            context_noise=300)
    sampler = VideoSampler(model=rec, vae=parts.vae, scheduler_config=dict(parts.scheduler.config),
                           sampling=SamplingConfig(steps=3, guidance=1.0, height=16, width=16), video=video,
                           progress=False)
    chunks = list(sampler(torch.randn(1, 77, 32)))
    latents = torch.cat([c.latents for c in chunks], dim=2)  # (1, 4, 10, h, w)
    clean = latents[:, :, 4:6]  # the first clip's last 2 frames, given to the second
    abar = sampler.noise_schedule.alphas_cumprod[300]
    given = [x[:, :, :2] for x, _ in rec.calls[3:]]
    assert all(torch.equal(g, given[0]) for g in given)  # noised once for the clip
    eps = (given[0] - abar.sqrt() * clean) / (1 - abar).sqrt()  # the noise that was added
    assert 0.7 < eps.std().item() < 1.3 and not torch.allclose(given[0], clean)
    assert all((t[:, :2] == 300).all() and (t[:, 2:] != 300).all() for _, t in rec.calls[3:])
    with pytest.raises(ValueError, match="context_noise"):
        LongVideoConfig(extend="vidrd", context_noise=10)


def test_generate_samples_noised_context_as_trained(tiny_base, toy_data, tmp_path_factory, capsys):
    from ldm_video.infer.generate import build_configs
    from ldm_video.infer.run_defaults import CONTEXT_NOISE_SHARE

    run = tmp_path_factory.mktemp("ctxn") / "run"
    assert main(_train_args(tiny_base, toy_data, run, "--context-frames", "2", "--context-noise", "200")) == 0
    common = ["generate", "--base", tiny_base, "--prompt", "x", "--frames", "10", "--clip-frames", "4", "--steps", "1",
              "--height", "16", "--width", "16", "--motion", str(run), "--out", "x.mp4"]
    _, video = build_configs(build_parser().parse_args(common))
    assert video.extend == "context" and video.context_noise == round(200 * CONTEXT_NOISE_SHARE)
    _, video = build_configs(build_parser().parse_args([*common, "--context-noise", "0"]))
    assert video.context_noise == 0
    for bad, message in ((["--extend", "vidrd", "--context-noise", "10"], "applies to --extend context only"),
                         (["--context-noise", "1000"], "must be a timestep")):
        with pytest.raises(LdmVideoError, match=message):
            build_configs(build_parser().parse_args([*common, *bad]))


def test_new_frames_can_start_from_the_last_given_frame_diffused(tiny_base):
    """context_init "last-frame": a later clip's new frames start from the forward process of the previous clip's
    last frame at the first timestep, sqrt(abar) z + sqrt(1 - abar) eps, with the same eps "fresh" would use."""
    parts = load_base(tiny_base, components=("unet", "vae", "scheduler"))
    model = inflate_unet(parts.unet).eval()
    randomise_temporal(model)
    calls, last = {}, {}
    text = torch.randn(1, 77, 32)
    for init in ("fresh", "last-frame"):
        rec = _Recorder(model)
        video = LongVideoConfig(num_frames=10, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2),
                                seam_drop=2, context_init=init)
        sampler = VideoSampler(model=rec, vae=parts.vae, scheduler_config=dict(parts.scheduler.config),
                               sampling=SamplingConfig(steps=3, guidance=1.0, height=16, width=16), video=video,
                               progress=False)
        latents = torch.cat([c.latents for c in sampler(text)], dim=2)  # (1, 4, 10, h, w)
        calls[init], last[init] = rec.calls, latents[:, :, 5]
    assert torch.equal(last["fresh"], last["last-frame"])  # the first clip is the same
    (x_fresh, t), (x_last, _) = calls["fresh"][3], calls["last-frame"][3]  # clip 2's first step
    abar = sampler.noise_schedule.alphas_cumprod[int(t[0, -1])]
    expected = abar.sqrt() * last["fresh"][:, :, None] + (1 - abar).sqrt() * x_fresh[:, :, 2:]
    assert torch.allclose(x_last[:, :, 2:], expected, atol=1e-5)
    assert torch.equal(x_last[:, :, :2], x_fresh[:, :, :2])  # the given frames are the given frames
    with pytest.raises(ValueError, match="context_init"):
        LongVideoConfig(extend="vidrd", context_init="last-frame")


def test_the_anchor_keeps_the_first_clips_channel_means(tiny_base):
    """context_anchor: every new frame of a later clip ends with the first clip's latent channel means (the
    scene's colours), its spatial detail untouched; without it the means wander."""
    parts = load_base(tiny_base, components=("unet", "vae", "scheduler"))
    model = inflate_unet(parts.unet).eval()
    randomise_temporal(model)
    text = torch.randn(1, 77, 32)
    out = {}
    for anchor in (False, True):
        video = LongVideoConfig(num_frames=14, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2),
                                seam_drop=2, context_anchor=anchor)
        sampler = VideoSampler(model=model, vae=parts.vae, scheduler_config=dict(parts.scheduler.config),
                               sampling=SamplingConfig(steps=2, guidance=1.0, height=16, width=16), video=video,
                               progress=False)
        out[anchor] = torch.cat([c.latents for c in sampler(text)], dim=2)  # (1, 4, 14, h, w)
    first = out[True][:, :, :6].mean(dim=(2, 3, 4))  # (1, 4)
    later = out[True][:, :, 6:].mean(dim=(3, 4))  # (1, 4, 8) each new frame's channel means
    assert torch.allclose(later, first[:, :, None].expand_as(later), atol=1e-5)
    assert not torch.allclose(out[False][:, :, 6:].mean(dim=(3, 4)), later, atol=1e-3)
    assert torch.equal(out[True][:, :, :6], out[False][:, :, :6])  # the first clip is the model's own
    with pytest.raises(ValueError, match="context_anchor"):
        LongVideoConfig(extend="vidrd", context_anchor=True)


def test_continuing_given_latents_is_the_clip_the_sampler_makes_after_them(tiny_base):
    """continue_from(z): the next clip is exactly the one the sampler denoises after a clip that ended with z
    (its last M frames given, the anchor at z's means, history guidance on); wrong shapes and modes are refused."""
    parts = load_base(tiny_base, components=("unet", "vae", "scheduler"))
    model = inflate_unet(parts.unet).eval()
    randomise_temporal(model)
    text = torch.randn(2, 77, 32)
    video = LongVideoConfig(num_frames=10, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2),
                            seam_drop=2, context_anchor=True, context_guidance=True)
    sampling = SamplingConfig(steps=2, guidance=2.0, height=16, width=16)

    def sampler() -> VideoSampler:
        return VideoSampler(model=model, vae=parts.vae, scheduler_config=dict(parts.scheduler.config),
                            sampling=sampling, video=video, progress=False)

    first, second = torch.randn(1, 4, 6, 2, 2), torch.randn(1, 4, 6, 2, 2)
    own = sampler()
    with torch.no_grad():
        before = own.denoise(0, first, text, torch.Generator().manual_seed(0))  # (1, 4, 6, 2, 2)
        after = own.denoise(1, second, text, torch.Generator().manual_seed(1))
        given = sampler()
        given.continue_from(before)
        continued = given.denoise(1, second, text, torch.Generator().manual_seed(1))
    assert torch.equal(continued, after)
    assert torch.equal(continued[:, :, :2], before[:, :, -2:])  # the given frames are kept as they were
    with pytest.raises(ValueError, match=r"latents must be \(1, 4, >= 2, 2, 2\)"):
        given.continue_from(before[:, :, :1])
    with pytest.raises(ValueError, match="extend='context'"):
        VideoSampler(model=model, vae=parts.vae, scheduler_config=dict(parts.scheduler.config), sampling=sampling,
                     video=LongVideoConfig(num_frames=10, vidrd=VidRDConfig(clip_frames=6, overlap=2)),
                     progress=False).continue_from(before)


def test_generate_anchors_context_videos_by_default(tiny_base, context_motion):
    from ldm_video.infer.generate import build_configs

    common = ["generate", "--base", tiny_base, "--prompt", "x", "--frames", "10", "--clip-frames", "4", "--steps", "1",
              "--height", "16", "--width", "16", "--motion", str(context_motion), "--out", "x.mp4"]
    assert build_configs(build_parser().parse_args(common))[1].context_anchor
    assert not build_configs(build_parser().parse_args([*common, "--no-context-anchor"]))[1].context_anchor
    with pytest.raises(LdmVideoError, match="applies to --extend context only"):
        build_configs(build_parser().parse_args([*common, "--extend", "vidrd", "--context-anchor"]))


def test_generate_guides_by_the_given_frames_by_default(tiny_base, context_motion, tmp_path):
    """On by default, except for a module trained with given frames in every clip (context_motion): it never saw
    a clip without them, which is what the unconditional branch would be."""
    import shutil

    from ldm_video.infer.generate import build_configs

    mixed = tmp_path / "mixed"  # the same module, recorded as trained with given frames in half the clips
    shutil.copytree(context_motion, mixed)
    record = json.loads((mixed / "temporal_config.json").read_text())
    record["metadata"]["context_prob"] = 0.5
    (mixed / "temporal_config.json").write_text(json.dumps(record))
    always = ["generate", "--base", tiny_base, "--prompt", "x", "--frames", "10", "--clip-frames", "4", "--steps", "1",
              "--height", "16", "--width", "16", "--motion", str(context_motion), "--out", "x.mp4"]
    assert not build_configs(build_parser().parse_args(always))[1].context_guidance
    older = tmp_path / "older"  # saved before the metadata recorded it: read from the run's train_config.yaml
    shutil.copytree(context_motion, older)
    record = json.loads((older / "temporal_config.json").read_text())
    del record["metadata"]["context_prob"]
    (older / "temporal_config.json").write_text(json.dumps(record))
    assert not build_configs(build_parser().parse_args([*always[:-3], str(older), "--out", "x.mp4"]))[1].context_guidance
    assert build_configs(build_parser().parse_args([*always, "--context-guidance"]))[1].context_guidance
    common = [*always[:-3], str(mixed), "--out", "x.mp4"]
    assert build_configs(build_parser().parse_args(common))[1].context_guidance
    assert not build_configs(build_parser().parse_args([*common, "--no-context-guidance"]))[1].context_guidance
    assert not build_configs(build_parser().parse_args([*common, "--guidance", "1"]))[1].context_guidance
    for bad, message in ((["--extend", "vidrd", "--context-guidance"], "applies to --extend context only"),
                         (["--guidance", "1", "--context-guidance"], "needs --guidance > 1")):
        with pytest.raises(LdmVideoError, match=message):
            build_configs(build_parser().parse_args([*common, *bad]))
    assert build_configs(build_parser().parse_args([*common, "--history-scale", "6"]))[1].history_scale == 6.0
    assert build_configs(build_parser().parse_args(common))[1].history_scale is None
    assert build_configs(build_parser().parse_args(common))[1].history_free == "dropped"  # the default
    assert build_configs(build_parser().parse_args([*common, "--history-free", "noised"]))[1].history_free == "noised"
    for bad, message in ((["--history-scale", "-1"], "--history-scale must be a number >= 0"),
                         (["--history-scale", "nan"], "--history-scale must be a number >= 0"),
                         (["--history-scale", "6", "--no-context-guidance"], "history guidance, which is off"),
                         (["--history-scale", "6", "--extend", "vidrd"], "applies to --extend context only"),
                         (["--history-free", "dropped", "--no-context-guidance"], "--history-free shapes history"),
                         (["--history-free", "dropped", "--extend", "vidrd"], "--history-free applies to --extend")):
        with pytest.raises(LdmVideoError, match=message):
            build_configs(build_parser().parse_args([*common, *bad]))
    with pytest.raises(LdmVideoError, match="history guidance, which is off"):  # trained with given frames always
        build_configs(build_parser().parse_args([*always, "--history-scale", "6"]))
    out = tmp_path / "v.mp4"
    assert main([*common[:-1], str(out), "--history-scale", "6", "--no-progress"]) == 0  # the default: dropped rows
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["context_guidance"] is True and record["history_scale"] == 6.0 and record["history_free"] == "dropped"
