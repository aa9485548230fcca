"""`ldm-video export`: every format loads in the tool it is meant for, through that tool's own loader."""

import json

import pytest
import torch
from einops import rearrange, repeat
from safetensors import safe_open

from ldm_video import VideoUNetConfig, inflate_unet, load_base, save_temporal
from ldm_video.checkpoint import load_motion
from ldm_video.cli import main
from ldm_video.lora import load_lora_file, lora_module_count

META = {"num_frames": 8, "noise_prior": "progressive", "noise_alpha": 2.0}


def _trained(base, tmp_path, name="run", **config):
    model = inflate_unet(load_base(base, components=("unet",)).unet, VideoUNetConfig(**config))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    save_temporal(model, tmp_path / name, metadata=META)
    return model.eval(), tmp_path / name


def _inputs(f=4):
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 4, f, 8, 8, generator=g), torch.tensor([300]), torch.randn(1, 77, 32, generator=g)


def test_motion_adapter_matches_diffusers_unet_motion_model(tiny_base, tmp_path):
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter, UNetMotionModel

    model, run = _trained(tiny_base, tmp_path, temporal_layers="attn")
    assert main(["export", "--motion", str(run), "--format", "motion-adapter", "--out", str(tmp_path / "ma")]) == 0
    adapter = MotionAdapter.from_pretrained(tmp_path / "ma")
    with safe_open(str(next((tmp_path / "ma").glob("*.safetensors"))), "pt") as f:
        header = f.metadata()
    assert header["ldm_video_noise_prior"] == "progressive" and header["ldm_video_num_frames"] == "8"
    assert json.loads(header["ldm_video_temporal_config"])["temporal_layers"] == "attn"
    theirs = UNetMotionModel.from_unet2d(load_base(tiny_base, components=("unet",)).unet, adapter).eval()
    x, t, text = _inputs(4)
    with torch.no_grad():
        ours = model(x, t, text).sample
        ref = theirs(x, t, repeat(text, "b s d -> (b f) s d", f=4)).sample  # diffusers wants text per frame
    assert (ours - ref).abs().max() <= 1e-5
    # and the pipeline runs with it
    base = load_base(tiny_base, components=("vae", "text_encoder", "tokenizer"))
    pipe = AnimateDiffPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer,
                               unet=load_base(tiny_base, components=("unet",)).unet, motion_adapter=adapter,
                               scheduler=DDIMScheduler.from_pretrained(tiny_base, subfolder="scheduler"))
    frames = pipe("a red circle", num_frames=4, num_inference_steps=2, height=32, width=32,
                  output_type="np", generator=torch.Generator().manual_seed(0)).frames
    assert frames.shape[1:] == (4, 32, 32, 3)


def test_motion_adapter_refuses_temporal_convs_unless_dropped(tiny_base, tmp_path, capsys):
    _, run = _trained(tiny_base, tmp_path, temporal_layers="attn+conv")
    assert main(["export", "--motion", str(run), "--format", "motion-adapter", "--out", str(tmp_path / "ma")]) == 2
    assert "--drop-temporal-conv" in capsys.readouterr().err
    assert not (tmp_path / "ma").exists()
    assert main(["export", "--motion", str(run), "--format", "motion-adapter", "--out", str(tmp_path / "ma"),
                 "--drop-temporal-conv"]) == 0
    model = load_motion(tmp_path / "ma", load_base(tiny_base, components=("unet",)).unet)
    assert model.config.temporal_layers == "attn" and model.temporal_convs is None


@pytest.mark.parametrize("fmt", ["diffusers-lora", "kohya-lora"])
def test_lora_loads_in_stable_diffusion_pipeline(tiny_base, tmp_path, fmt):
    from diffusers import StableDiffusionPipeline

    model, run = _trained(tiny_base, tmp_path, lora_rank=4, lora_alpha=8.0)
    out = tmp_path / f"{fmt}.safetensors"
    assert main(["export", "--motion", str(run), "--format", fmt, "--out", str(out)]) == 0
    pipe = StableDiffusionPipeline.from_pretrained(tiny_base, safety_checker=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(out), adapter_name="exported")
    n_layers = lora_module_count(model.unet, "default")
    assert lora_module_count(pipe.unet, "exported") == n_layers > 0  # no key left unloaded
    x, t, text = _inputs(1)
    flat = rearrange(x, "b c f h w -> (b f) c h w")
    with torch.no_grad():
        ours = model(x, t, text).sample[:, :, 0]  # one frame: the LoRA'd spatial U-Net alone
        theirs = pipe.unet(flat, t, text).sample
    assert (ours - theirs).abs().max() <= 1e-5
    with safe_open(str(out), "pt") as f:
        assert f.metadata()["ldm_video_base_unet_hash"]


@pytest.mark.parametrize("fmt", ["diffusers-lora", "kohya-lora"])
def test_load_lora_file_matches_native(tiny_base, tmp_path, fmt):
    model, run = _trained(tiny_base, tmp_path, temporal_layers="attn", lora_rank=4, lora_alpha=2.0)
    out = tmp_path / f"{fmt}.safetensors"
    assert main(["export", "--motion", str(run), "--format", fmt, "--out", str(out)]) == 0
    plain = inflate_unet(load_base(tiny_base, components=("unet",)).unet, VideoUNetConfig(temporal_layers="attn"))
    plain.motion.load_state_dict(model.motion.state_dict())
    assert load_lora_file(plain.unet, out) == lora_module_count(model.unet, "default")
    x, t, text = _inputs(4)
    with torch.no_grad():
        assert (model(x, t, text).sample - plain.eval()(x, t, text).sample).abs().max() <= 1e-5


def test_native_roundtrip_and_bad_inputs(tiny_base, tmp_path, capsys):
    model, run = _trained(tiny_base, tmp_path)
    assert main(["export", "--motion", str(run), "--format", "native", "--out", str(tmp_path / "nat")]) == 0
    loaded = load_motion(tmp_path / "nat", load_base(tiny_base, components=("unet",)).unet).eval()
    x, t, text = _inputs(3)
    with torch.no_grad():
        assert torch.equal(model(x, t, text).sample, loaded(x, t, text).sample)
    # a LoRA export of a model trained without LoRA is refused with one line
    assert main(["export", "--motion", str(run), "--format", "kohya-lora", "--out", str(tmp_path / "k.safetensors")]) == 2
    assert "no LoRA" in capsys.readouterr().err
    assert main(["export", "--motion", str(tmp_path / "missing"), "--format", "native", "--out", str(tmp_path / "x")]) == 2
    assert "no such file" in capsys.readouterr().err
    # a flag that does not apply is refused, not ignored
    assert main(["export", "--motion", str(run), "--format", "native", "--out", str(tmp_path / "y"),
                 "--drop-temporal-conv"]) == 2
    assert "applies to motion-adapter / animatediff" in capsys.readouterr().err
