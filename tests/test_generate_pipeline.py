"""The sampler against diffusers' StableDiffusionPipeline (identity at init), and VidRD's wiring inside it."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from ldm_video import inflate_unet, load_base
from ldm_video.infer.pipeline import LongVideoConfig, SamplingConfig, VideoSampler, encode_prompt
from ldm_video.infer.vidrd import VidRDConfig, dsg_hold_steps


def make_sampler(base_path, sampling, video, model=None):
    base = load_base(base_path)
    model = (model or inflate_unet(base.unet)).eval()
    text = encode_prompt(base.tokenizer, base.text_encoder, "a red square", "blurry", sampling.guidance, "cpu",
                         torch.float32)
    sampler = VideoSampler(model=model, vae=base.vae, scheduler_config=dict(base.scheduler.config),
                           sampling=sampling, video=video, progress=False)
    return sampler, text, base


@pytest.mark.parametrize("scheduler, prediction", [("ddim", "epsilon"), ("euler", "epsilon"),
                                                   ("dpm++", "v_prediction")])
def test_fresh_layers_one_clip_equal_stable_diffusion_per_frame(tiny_base, tiny_base_v, scheduler, prediction):
    from diffusers import StableDiffusionPipeline

    from ldm_video.infer.pipeline import make_scheduler

    path = tiny_base if prediction == "epsilon" else tiny_base_v
    sampling = SamplingConfig(scheduler=scheduler, steps=3, guidance=7.5, height=32, width=32, seed=3)
    video = LongVideoConfig(num_frames=4, vidrd=VidRDConfig(clip_frames=4, overlap=2), decode_chunk=3)
    sampler, text, _ = make_sampler(path, sampling, video)
    ours = torch.cat([c.frames for c in sampler(text)])  # (4, 3, 32, 32) in [-1, 1]
    noise = sampler.initial_noise(0, None, torch.Generator().manual_seed(3))  # the sampler's own first draw

    pipe = StableDiffusionPipeline.from_pretrained(path, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = make_scheduler(scheduler, pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    ref = pipe("a red square", negative_prompt="blurry", num_images_per_prompt=4, guidance_scale=7.5,
               num_inference_steps=3, height=32, width=32, output_type="pt",
               latents=rearrange(noise, "1 c f h w -> f c h w")).images  # (4, 3, 32, 32) in [0, 1]
    ours01 = (ours / 2 + 0.5).clamp(0, 1)
    assert ref.std() > 0.01
    assert (ours01 - ref).abs().max().item() <= 1e-4


def capture_inputs(model):
    """Record the latents every U-Net call sees (the guided batch's first half)."""
    seen = []
    forward = model.forward

    def spy(sample, timestep, encoder_hidden_states, **kwargs):
        seen.append(sample[:1].clone())  # (1, 4, N, h, w), after scale_model_input
        return forward(sample, timestep, encoder_hidden_states, **kwargs)

    model.forward = spy
    return seen


@pytest.mark.parametrize("order", ["reversed", "forward"])
def test_vidrd_fnr_and_dsg_wiring(tiny_base, order):
    """Clip 2's frame j sees clip 1's frame source(j) exactly while DSG holds it, and not after."""
    from tests.test_generate import randomise_temporal

    base = load_base(tiny_base, components=("unet",))
    model = inflate_unet(base.unet)
    randomise_temporal(model)  # frames interact, so a held frame differs from a free one
    steps, n, m = 6, 6, 3
    sampling = SamplingConfig(steps=steps, guidance=2.0, height=16, width=16)
    video = LongVideoConfig(num_frames=2 * n, vidrd=VidRDConfig(clip_frames=n, overlap=m, pns_alpha=1.0,
                                                                 dsg_beta=0.5, order=order))
    sampler, text, _ = make_sampler(tiny_base, sampling, video, model)
    seen = capture_inputs(model)
    chunks = list(sampler(text))
    assert sum(c.frames.shape[0] for c in chunks) == 2 * n
    holds = dsg_hold_steps(steps, m, 0.5, order)
    assert holds == ([3, 2, 1] if order == "reversed" else [1, 2, 3])  # the old last frame is held longest
    source = [n - 1 - j for j in range(n)] if order == "reversed" else [(j + n - m) % n for j in range(n)]
    first, second = seen[:steps], seen[steps:]
    for j in range(m):
        for k in range(steps):
            same = torch.equal(second[k][:, :, j], first[k][:, :, source[j]])
            assert same == (k < holds[j]), (j, k)
    for j in range(m, n):  # PNS frames start from mixed noise, never copies
        assert not torch.equal(second[0][:, :, j], first[0][:, :, source[j]])


def test_independent_clips_start_from_fresh_noise(tiny_base):
    sampling = SamplingConfig(steps=1, guidance=1.0, height=16, width=16)
    video = LongVideoConfig(num_frames=8, extend="independent", vidrd=VidRDConfig(clip_frames=4, overlap=0))
    sampler, text, _ = make_sampler(tiny_base, sampling, video)
    seen = capture_inputs(sampler.model)
    list(sampler(text))
    assert len(seen) == 2 and seen[0].shape[0] == 1  # no guidance: one U-Net batch
    for j in range(4):
        assert not torch.equal(seen[1][:, :, j], seen[0][:, :, 3 - j])


@pytest.mark.parametrize("frames, clip, drop", [(40, 8, 0), (40, 8, 4), (41, 8, 1), (5, 8, 0), (9, 8, 7)])
def test_frame_arithmetic_is_exact(frames, clip, drop):
    video = LongVideoConfig(num_frames=frames, vidrd=VidRDConfig(clip_frames=clip, overlap=clip // 2),
                            seam_drop=drop)
    kept = [video.kept_frames(c) for c in range(video.num_clips)]
    assert sum(e - s for s, e in kept) == frames
    assert all(e > s for s, e in kept)
    assert all(s == drop for s, _ in kept[1:])


def test_motion_adapter_folder_matches_animatediff_pipeline(tiny_base, tmp_path):
    """Trained-like (random) attention-only temporal layers, written as a diffusers MotionAdapter and given
    to --motion, sample the same clip as diffusers' AnimateDiffPipeline with that adapter."""
    from diffusers import AnimateDiffPipeline, MotionAdapter

    from ldm_video import VideoUNetConfig
    from ldm_video.checkpoint import load_motion
    from ldm_video.infer.pipeline import make_scheduler
    from tests.test_generate import randomise_temporal

    trained = inflate_unet(load_base(tiny_base, components=("unet",)).unet,
                           VideoUNetConfig(temporal_layers="attn", max_frames=8))
    randomise_temporal(trained)
    trained.motion.save_pretrained(tmp_path / "adapter")

    base = load_base(tiny_base)
    model = load_motion(tmp_path / "adapter", base.unet)
    sampling = SamplingConfig(steps=3, guidance=7.5, height=32, width=32, seed=5)
    video = LongVideoConfig(num_frames=4, vidrd=VidRDConfig(clip_frames=4, overlap=2))
    sampler, text, _ = make_sampler(tiny_base, sampling, video, model)
    ours = (torch.cat([c.frames for c in sampler(text)]) / 2 + 0.5).clamp(0, 1)  # (4, 3, 32, 32)
    noise = sampler.initial_noise(0, None, torch.Generator().manual_seed(5))  # (1, 4, 4, 4, 4)

    peer = load_base(tiny_base)
    pipe = AnimateDiffPipeline(vae=peer.vae, text_encoder=peer.text_encoder, tokenizer=peer.tokenizer,
                               unet=peer.unet, motion_adapter=MotionAdapter.from_pretrained(tmp_path / "adapter"),
                               scheduler=make_scheduler("ddim", peer.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    ref = pipe("a red square", negative_prompt="blurry", num_frames=4, guidance_scale=7.5, num_inference_steps=3,
               height=32, width=32, latents=noise, output_type="pt").frames[0]  # (4, 3, 32, 32) in [0, 1]
    assert (ours - ref).abs().max().item() <= 1e-4
    assert ref.std() > 0.01
