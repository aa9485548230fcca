"""The video U-Net (SPEC §2): identity at initialisation, frozen spatial weights, image mode, checkpointing."""

import pytest
import torch
from einops import rearrange, repeat

from ldm_video import VideoUNetConfig, inflate_unet, load_base
from ldm_video.errors import LdmVideoError

LAYERS = ["attn", "conv", "attn+conv"]


def _inputs(num_frames: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, 4, num_frames, 8, 8, generator=g)  # (b, c, f, h, w)
    text = torch.randn(2, 77, 32, generator=g)  # (b, seq, dim)
    timestep = torch.tensor([10, 700])
    return latents, timestep, text


def _per_frame(unet2d, latents, timestep, text):
    f = latents.shape[2]
    out = unet2d(rearrange(latents, "b c f h w -> (b f) c h w"), repeat(timestep, "b -> (b f)", f=f),
                 repeat(text, "b s d -> (b f) s d", f=f)).sample
    return rearrange(out, "(b f) c h w -> b c f h w", f=f)


@pytest.mark.parametrize("temporal_layers", LAYERS)
@pytest.mark.parametrize("num_frames", [1, 4, 9])
def test_identity_at_initialisation(any_base, temporal_layers, num_frames):
    unet2d = load_base(any_base, components=("unet",)).unet
    latents, t, text = _inputs(num_frames)
    with torch.no_grad():
        expected = _per_frame(unet2d, latents, t, text)
        model = inflate_unet(unet2d, VideoUNetConfig(temporal_layers=temporal_layers, lora_rank=4)).eval()
        out = model(latents, t, text).sample
    assert out.shape == latents.shape
    assert (out - expected).abs().max() <= 1e-5


def _perturb_temporal(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def _trained_like(tiny_base):
    """A video U-Net with perturbed (trained-like) temporal layers, 4-frame inputs, and the image model's output."""
    unet2d = load_base(tiny_base, components=("unet",)).unet
    latents, t, text = _inputs(4)
    with torch.no_grad():
        expected = _per_frame(unet2d, latents, t, text)
        model = inflate_unet(unet2d, VideoUNetConfig(temporal_layers="attn+conv")).eval()
        _perturb_temporal(model)
    return model, (latents, t, text), expected


def test_temporal_layers_mix_frames_once_trained(tiny_base):
    """Guards the identity test against passing because the temporal layers never run."""
    model, (latents, t, text), expected = _trained_like(tiny_base)
    with torch.no_grad():
        moved = model(latents, t, text).sample
        shifted = latents.clone()
        shifted[:, :, 0] += 1.0  # change frame 0 only
        others = model(shifted, t, text).sample
    assert (moved - expected).abs().max() > 1e-3
    assert (others[:, :, 1:] - moved[:, :, 1:]).abs().max() > 1e-4  # frame 0 reaches frames 1..3


def test_clips_of_different_lengths_in_one_call_equal_each_alone(tiny_base):
    """forward_clips: the spatial layers run on every clip's frames at once, the temporal layers clip by clip, so
    each prediction is the clip's own (per-frame timesteps, one per clip, or a scalar); the model is an image model
    again afterwards, and a clip past max_frames is refused."""
    from ldm_video.video_unet import VideoClip

    model, (latents, t, text), _ = _trained_like(tiny_base)  # (2, 4, 4, 8, 8)
    g = torch.Generator().manual_seed(3)
    longer = torch.randn(1, 4, 7, 8, 8, generator=g)
    per_frame = torch.randint(0, 1000, (1, 7), generator=g)
    clips = [VideoClip(longer, per_frame, text[:1]), VideoClip(latents, t, text), VideoClip(latents[:1], 250, text[1:])]
    with torch.no_grad():
        joint = model.forward_clips(clips)
        alone = [model(c.sample, c.timestep, c.encoder_hidden_states).sample for c in clips]
        assert model.frames.clips == ()
        image = model.unet(latents[:, :, 0], t, text).sample  # the bare U-Net between calls: no temporal layer
    assert [j.shape for j in joint] == [a.shape for a in alone]
    for j, a in zip(joint, alone):
        torch.testing.assert_close(j, a, atol=1e-5, rtol=1e-5)
    assert (alone[1] - alone[2][:1].expand(2, -1, -1, -1, -1)).abs().max() > 1e-3  # the clips differ
    torch.testing.assert_close(image, _per_frame(model.unet, latents[:, :, :1], t, text)[:, :, 0])
    with pytest.raises(LdmVideoError, match="max_frames"):
        model.forward_clips([clips[1], VideoClip(torch.zeros(1, 4, 40, 8, 8), 10, text[:1])])
    with pytest.raises(RuntimeError):  # fails inside the U-Net: text of the wrong width
        model.forward_clips([VideoClip(latents[:1], 10, torch.zeros(1, 77, 16))] * 2)
    assert model.frames.clips == ()  # an image model again, however the call ended
    with pytest.raises(ValueError, match="at least one clip"):
        model.forward_clips([])


def test_motion_scale_scales_each_temporal_branch(tiny_base):
    """x + scale * branch(x) per temporal layer: 0 is the image model, 1 the model as it was, and on one layer the
    output moves linearly with the scale."""
    from ldm_video.temporal import ClipSpan, TemporalConvStack, run_temporal

    model, (latents, t, text), expected = _trained_like(tiny_base)
    with torch.no_grad():
        trained = model(latents, t, text).sample
        model.set_motion_scale(0.0)
        off = model(latents, t, text).sample
        model.set_motion_scale(2.0)
        strong = model(latents, t, text).sample
        model.set_motion_scale(1.0)
        again = model(latents, t, text).sample
        layer = TemporalConvStack(8, depth=1, dropout=0.0, norm_groups=2).eval()
        torch.nn.init.normal_(layer.layers[-1].weight)
        x = torch.randn(2 * 3, 8, 4, 4)  # ((b f), c, h, w)
        branch = layer(x, 3) - x
        scaled = run_temporal((layer,), x, (ClipSpan(6, 3),), 2.5)
    assert (off - expected).abs().max() <= 1e-5
    assert torch.equal(again, trained) and (strong - trained).abs().max() > 1e-3
    torch.testing.assert_close(scaled, x + 2.5 * branch)
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="motion scale"):
            model.set_motion_scale(bad)


def test_fresh_layers_are_switched_off_with_the_same_output(tiny_base):
    """load_video_model without a --motion: fresh (identity) temporal layers at motion scale 0, whose work is
    skipped; the output is the one the computed identity layers give, exactly."""
    from ldm_video.infer.model import load_video_model

    base = load_base(tiny_base, components=("unet",))
    latents, t, text = _inputs(3)
    model = load_video_model(base, None, None, 1.0)
    calls = []
    for module in model.motion.modules():
        if module.__class__.__name__ == "AnimateDiffTransformer3D":
            module.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        off = model(latents, t, text).sample
        assert not calls  # skipped
        model.set_motion_scale(1.0)
        computed = model(latents, t, text).sample
    assert calls and torch.equal(off, computed)


def test_one_frame_skips_temporal_layers(tiny_base):
    unet2d = load_base(tiny_base, components=("unet",)).unet
    latents, t, text = _inputs(1)
    with torch.no_grad():
        expected = _per_frame(unet2d, latents, t, text)
        model = inflate_unet(unet2d, VideoUNetConfig(temporal_layers="attn+conv")).eval()
        _perturb_temporal(model)
        out = model(latents, t, text).sample
    assert torch.equal(out, expected)


def test_only_temporal_and_lora_train_and_spatial_weights_stay_bit_identical(tiny_base):
    unet2d = load_base(tiny_base, components=("unet",)).unet
    model = inflate_unet(unet2d, VideoUNetConfig(temporal_layers="attn+conv", lora_rank=4))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("motion.", "temporal_convs.")) or ".lora_" in n for n in trainable)
    assert any(".lora_" in n for n in trainable) and any(n.startswith("motion.") for n in trainable)
    spatial = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-3)
    latents, t, text = _inputs(4)
    model(latents, t, text).sample.square().mean().backward()
    optimizer.step()
    for n, p in model.named_parameters():
        if n in spatial:
            assert torch.equal(p, spatial[n]), n
    changed = [n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert any(n.startswith("motion.") for n in changed) and any(n.startswith("temporal_convs.") for n in changed)
    assert any(".lora_" in n for n in changed)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_base):
    grads = []
    for checkpointing in (False, True):
        unet2d = load_base(tiny_base, components=("unet",)).unet
        torch.manual_seed(0)
        model = inflate_unet(unet2d, VideoUNetConfig(temporal_layers="attn+conv", conv_dropout=0.0)).train()
        _perturb_temporal(model)
        model.enable_gradient_checkpointing(checkpointing)
        latents, t, text = _inputs(4)
        model(latents, t, text).sample.square().mean().backward()
        grads.append([p.grad.clone() for p in model.trainable_parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)


def test_image_and_video_forwards_before_one_backward(tiny_base):
    """Joint image-video steps: a one-frame forward between a video forward and its backward changes nothing."""
    unet2d = load_base(tiny_base, components=("unet",)).unet
    model = inflate_unet(unet2d, VideoUNetConfig(temporal_layers="attn+conv", conv_dropout=0.0))
    _perturb_temporal(model)
    model.enable_gradient_checkpointing()
    video, t, text = _inputs(4)
    image, _, _ = _inputs(1, seed=5)
    loss_video = model(video, t, text).sample.square().mean()
    loss_video.backward()
    ref = [p.grad.clone() for p in model.trainable_parameters()]
    model.zero_grad()
    loss_video = model(video, t, text).sample.square().mean()
    loss_image = model(image, t, text).sample.square().mean()  # image forward in between
    loss_video.backward()
    for a, p in zip(ref, model.trainable_parameters()):
        assert torch.allclose(a, p.grad, atol=1e-6)
    del loss_image


def test_too_many_frames_and_double_inflation_are_refused(tiny_base):
    unet2d = load_base(tiny_base, components=("unet",)).unet
    model = inflate_unet(unet2d, VideoUNetConfig(max_frames=4))
    latents, t, text = _inputs(5)
    with pytest.raises(LdmVideoError, match="max_frames=4"):
        model(latents, t, text)
    with pytest.raises(ValueError, match="inflated twice"):
        inflate_unet(unet2d)


def test_bad_config_values():
    with pytest.raises(ValueError, match="temporal_layers"):
        VideoUNetConfig(temporal_layers="lstm")
    with pytest.raises(ValueError, match="conv_depth"):
        VideoUNetConfig(conv_depth=0)


def test_attention_backends(tiny_base):
    import importlib.util

    unet2d = load_base(tiny_base, components=("unet",)).unet
    model = inflate_unet(unet2d, VideoUNetConfig(temporal_layers="attn+conv")).eval()
    latents, t, text = _inputs(3)
    with torch.no_grad():
        before = model(latents, t, text).sample
        model.set_attention_backend("sdpa")
        assert torch.allclose(model(latents, t, text).sample, before, atol=1e-6)
    if importlib.util.find_spec("xformers") is None:
        with pytest.raises(LdmVideoError, match="xformers is not installed"):
            model.set_attention_backend("xformers")
    with pytest.raises(LdmVideoError, match="unknown attention backend"):
        model.set_attention_backend("flash")


def test_layers_follow_the_unet_dtype(tiny_base):
    unet2d = load_base(tiny_base, components=("unet",), dtype=torch.bfloat16).unet
    model = inflate_unet(unet2d, VideoUNetConfig(lora_rank=2))
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    latents, t, text = _inputs(2)
    with torch.no_grad():
        assert model(latents.bfloat16(), t, text.bfloat16()).sample.dtype == torch.bfloat16
