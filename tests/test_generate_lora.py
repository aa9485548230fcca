"""`--lora FILE --lora-scale`: a diffusers-format LoRA loaded into the spatial U-Net with diffusers' loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from einops import rearrange
from safetensors.torch import load_file, save_file

from ldm_video import load_base
from ldm_video.cli import main
from ldm_video.infer.model import load_video_model
from ldm_video.infer.pipeline import LongVideoConfig, SamplingConfig, VideoSampler, encode_prompt
from ldm_video.infer.video_io import read_video
from ldm_video.infer.vidrd import VidRDConfig


@pytest.fixture(scope="module")
def lora_file(tiny_base, tmp_path_factory):
    """A random (non-zero) rank-4 LoRA on the tiny U-Net's attention, saved by diffusers' save_lora_weights."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(0)
    unet = load_base(tiny_base, components=("unet",)).unet
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    out = tmp_path_factory.mktemp("lora")
    peft_state = get_peft_model_state_dict(unet)
    StableDiffusionPipeline.save_lora_weights(out, unet_lora_layers=convert_state_dict_to_diffusers(peft_state),
                                              safe_serialization=True)
    from ldm_video.lora import to_kohya

    save_file(to_kohya(peft_state, alpha=4.0), str(out / "kohya.safetensors"))  # the same LoRA, kohya naming
    return out / "pytorch_lora_weights.safetensors"


ARGS = ["--prompt", "x", "--frames", "4", "--clip-frames", "4", "--steps", "2", "--height", "16", "--width", "16",
        "--no-progress"]


def test_lora_scale_changes_the_video(tiny_base, lora_file, tmp_path):
    runs = {"none": [], "one": ["--lora", str(lora_file)], "zero": ["--lora", str(lora_file), "--lora-scale", "0"]}
    for name, extra in runs.items():
        assert main(["generate", "--base", tiny_base, *ARGS, *extra, "--out", str(tmp_path / name)]) == 0
    none, one, zero = (read_video(tmp_path / n).astype(int) for n in runs)
    np.testing.assert_array_equal(none, zero)
    assert np.abs(none - one).max() > 2


def test_lora_matches_diffusers_pipeline_with_the_same_lora(tiny_base, lora_file):
    from diffusers import StableDiffusionPipeline

    base = load_base(tiny_base)
    model = load_video_model(base, None, str(lora_file), 0.5)
    sampling = SamplingConfig(steps=2, guidance=3.0, height=16, width=16, seed=1)
    video = LongVideoConfig(num_frames=3, vidrd=VidRDConfig(clip_frames=3, overlap=1))
    text = encode_prompt(base.tokenizer, base.text_encoder, "x", "", 3.0, "cpu", torch.float32)
    sampler = VideoSampler(model, base.vae, dict(base.scheduler.config), sampling, video, progress=False)
    ours = (torch.cat([c.frames for c in sampler(text)]) / 2 + 0.5).clamp(0, 1)  # (3, 3, 16, 16)
    noise = sampler.initial_noise(0, None, torch.Generator().manual_seed(1))

    pipe = StableDiffusionPipeline.from_pretrained(tiny_base, safety_checker=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(lora_file.parent), weight_name=lora_file.name, adapter_name="x")
    pipe.set_adapters(["x"], [0.5])
    pipe.set_progress_bar_config(disable=True)
    ref = pipe("x", num_images_per_prompt=3, guidance_scale=3.0, num_inference_steps=2, height=16, width=16,
               output_type="pt", latents=rearrange(noise, "1 c f h w -> f c h w")).images
    assert (ours - ref).abs().max().item() <= 1e-4


def test_kohya_file_gives_the_same_video(tiny_base, lora_file, tmp_path):
    kohya = lora_file.parent / "kohya.safetensors"
    assert any(k.startswith("lora_unet_") for k in load_file(str(kohya)))
    for name, file in (("d", lora_file), ("k", kohya)):
        assert main(["generate", "--base", tiny_base, *ARGS, "--lora", str(file), "--out", str(tmp_path / name)]) == 0
    np.testing.assert_allclose(read_video(tmp_path / "d"), read_video(tmp_path / "k"), atol=1)


def test_lora_without_unet_layers_is_refused(tiny_base, lora_file, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    save_file({"text_encoder.layer.lora_A.weight": torch.zeros(2, 2)}, str(bad))
    assert main(["generate", "--base", tiny_base, *ARGS, "--lora", str(bad), "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "bad.safetensors" in err and "\n" not in err.strip()
