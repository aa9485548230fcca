"""Block-causal context frames (`train --context-causal`): given frames attend only to each other, so a sampler
can cache their keys and values once per clip (ldm_video.causal)."""

from __future__ import annotations

import pytest
import torch

from ldm_video import inflate_unet, load_base
from ldm_video.causal import block_causal_mask
from ldm_video.config import VideoUNetConfig
from tests.test_context_frames import _train_args
from tests.test_generate import randomise_temporal

CAUSAL = VideoUNetConfig(motion_norm="per-frame", context_causal=True, max_frames=16)


@pytest.fixture(scope="module")
def causal_model(tiny_base):
    model = inflate_unet(load_base(tiny_base, components=("unet",)).unet, CAUSAL).eval()
    randomise_temporal(model)
    return model


def _inputs(b: int = 2, f: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 4, f, 8, 8, generator=g), torch.randn(b, 77, 32, generator=g)


def test_mask_rule():
    given = torch.tensor([[True, True, False], [False, False, False]])
    mask = block_causal_mask(given)
    assert mask[0].tolist() == [[True, True, False], [True, True, False], [True, True, True]]
    assert mask[1].all()


def test_given_frames_do_not_see_the_others(causal_model):
    x, text = _inputs()
    given = torch.zeros(2, 6, dtype=torch.bool)
    given[:, :3] = True
    t = torch.tensor([[0, 0, 0, 500, 500, 500]] * 2)
    other = x.clone()
    other[:, :, 3:] = torch.randn(other[:, :, 3:].shape)
    with torch.no_grad():
        a = causal_model(x, t, text, given=given).sample
        b = causal_model(other, t, text, given=given).sample
        full = causal_model(x, t, text).sample
    assert torch.allclose(a[:, :, :3], b[:, :, :3], atol=1e-5)  # the given frames: unchanged by the new ones
    assert (a[:, :, 3:] - b[:, :, 3:]).abs().max() > 1e-3  # the new frames still see them and themselves
    assert (a[:, :, :3] - full[:, :, :3]).abs().max() > 1e-4  # the mask really acts (the layers are not identity)


@pytest.mark.parametrize("m", [1, 3, 5])
def test_cached_equals_one_masked_pass(causal_model, m):
    x, text = _inputs()
    f = x.shape[2]
    given = torch.zeros(2, f, dtype=torch.bool)
    given[:, :m] = True
    t = torch.full((2, f), 700)
    t[:, :m] = 20  # given frames at a small noise level (train --context-noise)
    with torch.no_grad():
        full = causal_model(x, t, text, given=given).sample  # (2, 4, f, 8, 8)
        cache = causal_model.cache_context(x[:, :, :m], t[:, :m], text)
        new = causal_model(x[:, :, m:], t[:, m:], text, cache=cache).sample
        again = causal_model(x[:, :, m:], t[:, m:], text, cache=cache).sample  # the cache is read, not changed
    assert cache.frames == m and not cache.recording
    assert torch.allclose(new, full[:, :, m:], atol=1e-5), (new - full[:, :, m:]).abs().max()
    assert torch.equal(new, again)


def test_without_given_frames_it_is_the_plain_model(tiny_base, causal_model):
    plain = inflate_unet(load_base(tiny_base, components=("unet",)).unet,
                         VideoUNetConfig(motion_norm="per-frame", max_frames=16)).eval()
    plain.load_state_dict(causal_model.state_dict())
    x, text = _inputs()
    with torch.no_grad():
        a = causal_model(x, 300, text).sample
        b = causal_model(x, 300, text, given=torch.zeros(2, 6, dtype=torch.bool)).sample
        c = plain(x, 300, text).sample
    assert torch.allclose(a, c, atol=1e-5) and torch.allclose(b, c, atol=1e-5)


def test_causal_needs_per_frame_attention_only_and_a_causal_model(tiny_base):
    with pytest.raises(ValueError, match="per-frame"):
        VideoUNetConfig(context_causal=True)
    with pytest.raises(ValueError, match="per-frame"):
        VideoUNetConfig(context_causal=True, motion_norm="per-frame", temporal_layers="attn+conv")
    plain = inflate_unet(load_base(tiny_base, components=("unet",)).unet).eval()
    x, text = _inputs()
    with pytest.raises(ValueError, match="block-causal"):
        plain(x, 300, text, given=torch.zeros(2, 6, dtype=torch.bool))


def test_backend_switch_keeps_the_causal_attention(causal_model):
    x, text = _inputs()
    given = torch.zeros(2, 6, dtype=torch.bool)
    given[:, :2] = True
    with torch.no_grad():
        before = causal_model(x, 300, text, given=given).sample
        causal_model.set_attention_backend("sdpa")
        after = causal_model(x, 300, text, given=given).sample
    assert torch.allclose(before, after, atol=1e-6)


def test_masked_training_backward_with_checkpointing(tiny_base):
    model = inflate_unet(load_base(tiny_base, components=("unet",)).unet, CAUSAL)
    randomise_temporal(model)
    x, text = _inputs()
    given = torch.zeros(2, 6, dtype=torch.bool)
    given[0, :3] = True
    grads = []
    for checkpointing in (False, True):
        model.zero_grad()
        model.enable_gradient_checkpointing(checkpointing)
        model(x, 300, text, given=given).sample.square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.trainable_parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)  # recomputation sees the same mask


def test_clips_with_and_without_a_cache_in_one_call(causal_model):
    """forward_clips on a block-causal model: a clip of new frames against the given frames' cache and a clip
    without history share one call, each as it runs alone."""
    from ldm_video.video_unet import VideoClip

    x, text = _inputs(b=1, f=6)
    other, _ = _inputs(b=2, f=4, seed=1)
    t = torch.tensor([[0, 0, 700, 700, 700, 700]])
    with torch.no_grad():
        cache = causal_model.cache_context(x[:, :, :2], t[:, :2], text)
        against = VideoClip(x[:, :, 2:], t[:, 2:], text, cache=cache)
        free = VideoClip(other, 700, text.expand(2, -1, -1))
        joint = causal_model.forward_clips([free, against])
        alone = [causal_model(other, 700, text.expand(2, -1, -1)).sample,
                 causal_model(x[:, :, 2:], t[:, 2:], text, cache=cache).sample]
        masked = causal_model(x, t, text, given=t == 0).sample[:, :, 2:]  # the reference of the cache
    for j, a in zip(joint, alone):
        torch.testing.assert_close(j, a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(joint[1], masked, atol=1e-4, rtol=1e-4)


# -- the sampler ----------------------------------------------------------------------------------------------

class _Counter(torch.nn.Module):
    """Wraps a VideoUNet and counts the frames each call runs."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.config, self.frames_run = model, model.config, []

    def forward(self, x, t, text, **kwargs):
        self.frames_run.append(x.shape[2])
        return self.inner(x, t, text, **kwargs)

    def forward_clips(self, clips):
        self.frames_run.append(tuple(clip.sample.shape[2] for clip in clips))  # one call: a tuple
        return self.inner.forward_clips(clips)

    def cache_context(self, x, t, text):
        self.frames_run.append(("cache", x.shape[2]))
        return self.inner.cache_context(x, t, text)


@pytest.mark.parametrize("scheduler,guidance,noise,free,history,dropped", [
    ("ddim", 1.0, 0, False, None, False), ("euler", 3.0, 0, False, None, False), ("dpm++", 3.0, 50, False, None, False),
    ("ddim", 3.0, 50, True, None, False), ("ddim", 3.0, 50, True, 6.0, False), ("ddim", 3.0, 50, True, None, True),
    ("ddim", 3.0, 50, True, 6.0, True)])
def test_the_cached_sampler_equals_the_masked_one(tiny_base, causal_model, scheduler, guidance, noise, free, history,
                                                  dropped):
    from ldm_video.infer.pipeline import LongVideoConfig, SamplingConfig, VideoSampler
    from ldm_video.infer.vidrd import VidRDConfig

    parts = load_base(tiny_base, components=("vae", "scheduler"))
    video = LongVideoConfig(num_frames=14, extend="context", vidrd=VidRDConfig(clip_frames=6, overlap=2),
                            seam_drop=2, context_noise=noise, context_anchor=True, context_guidance=free,
                            history_scale=history, history_free="dropped" if dropped else "noised")
    out, runs = {}, {}
    for cache in (True, False):
        counter = _Counter(causal_model)
        sampler = VideoSampler(model=counter, vae=parts.vae, scheduler_config=dict(parts.scheduler.config),
                               sampling=SamplingConfig(scheduler=scheduler, steps=3, guidance=guidance, height=16,
                                                       width=16), video=video, progress=False, cache_context=cache)
        text = torch.randn(2 if guidance > 1 else 1, 77, 32, generator=torch.Generator().manual_seed(1))
        out[cache] = torch.cat([c.latents for c in sampler(text)], dim=2)  # (1, 4, 14, h, w)
        runs[cache] = counter.frames_run
    assert out[True].shape[2] == 14
    assert torch.allclose(out[True], out[False], atol=1e-3), (out[True] - out[False]).abs().max()  # float noise
    # clips 2 and 3: the 2 given frames run once per clip, then only the 4 new frames at each of the 3 steps (and,
    # with history guidance, the rows without them in the same call, a tuple: their 6 frames unmasked)
    # (history_free "dropped": the new frames alone, except at the last step, t = 1, no noisier than the given ones)
    if dropped:
        assert runs[True] == [6] * 3 + ([("cache", 2)] + [(4, 4)] * 2 + [(6, 4)]) * 2
        assert runs[False] == [6] * 3 + ([(4, 6)] * 2 + [6]) * 2
        return
    assert runs[True] == [6] * 3 + ([("cache", 2)] + ([(6, 4)] if free else [4]) * 3) * 2
    assert runs[False] == [6] * 9


# -- train and generate -----------------------------------------------------------------------------------------

def test_train_and_generate_with_block_causal_context(tiny_base, toy_data, tmp_path, capsys,
                                                      monkeypatch):
    import json

    from ldm_video import causal
    from ldm_video.cli import main

    masks, real_mask = [], causal.block_causal_mask
    monkeypatch.setattr(causal, "block_causal_mask", lambda given: masks.append(given.clone()) or real_mask(given))
    run = tmp_path / "run"
    assert main(_train_args(tiny_base, toy_data, run, "--context-frames", "2", "--context-prob", "1",
                            "--context-causal", "--motion-norm", "per-frame")) == 0
    assert masks and all(m[:, :2].all() and not m[:, 2:].any() for m in masks)  # training masks the given frames
    record = json.loads((run / "temporal_config.json").read_text())
    assert record["temporal"]["context_causal"] is True
    out = tmp_path / "v.mp4"
    assert main(["generate", "--base", tiny_base, "--motion", str(run), "--prompt", "a red square moving right",
                 "--frames", "10", "--clip-frames", "4", "--steps", "2", "--height", "32", "--width", "32",
                 "--out", str(out), "--no-progress"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["extend"] == "context"
    assert main(_train_args(tiny_base, toy_data, tmp_path / "bad", "--context-frames", "2", "--context-causal")) == 2
    assert "--context-causal needs --temporal-layers attn and --motion-norm per-frame" in capsys.readouterr().err
    assert main(_train_args(tiny_base, toy_data, tmp_path / "bad", "--context-causal", "--motion-norm",
                            "per-frame")) == 2
    assert "--context-causal needs --context-frames" in capsys.readouterr().err


def test_the_demo_trains_block_causal_on_request(monkeypatch, tmp_path):
    from ldm_video.errors import LdmVideoError
    from ldm_video.toy.demo import DemoConfig, DemoSampling, DemoTraining, train_motion
    from ldm_video.train import trainer

    seen = []
    monkeypatch.setattr(trainer, "train", lambda config, progress=True: seen.append(config))
    train_motion(DemoConfig(training=DemoTraining(context_causal=True)), "base", tmp_path / "d", tmp_path / "m")
    config = seen[0].video_unet_config()
    assert config.context_causal and config.motion_norm == "per-frame"
    train_motion(DemoConfig(), "base", tmp_path / "d", tmp_path / "m")
    assert not seen[1].video_unet_config().context_causal  # the default: full attention
    with pytest.raises(LdmVideoError, match="--context-causal trains the frames given by --extend context"):
        DemoConfig(training=DemoTraining(context_causal=True), sampling=DemoSampling(extend="vidrd"))
