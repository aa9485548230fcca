"""Exported files loaded back by `ldm-video generate` give the same video as the native checkpoint."""

import pytest
import torch
from safetensors.torch import load_file

from ldm_video import VideoUNetConfig, inflate_unet, load_base, save_temporal
from ldm_video.cli import main

ARGS = ["--prompt", "a red circle moving left", "--frames", "12", "--clip-frames", "8", "--overlap", "4",
        "--steps", "3", "--height", "32", "--width", "32", "--seed", "3"]


@pytest.fixture(scope="module")
def exported(tiny_base, tmp_path_factory):
    """A trained-like native checkpoint (attention + LoRA) and its three exports."""
    root = tmp_path_factory.mktemp("exported")
    model = inflate_unet(load_base(tiny_base, components=("unet",)).unet,
                         VideoUNetConfig(temporal_layers="attn", lora_rank=4, lora_alpha=2.0))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    save_temporal(model, root / "native", metadata={"num_frames": 8})
    for fmt, out in [("motion-adapter", "adapter"), ("diffusers-lora", "lora.safetensors"),
                     ("kohya-lora", "kohya.safetensors")]:
        assert main(["export", "--motion", str(root / "native"), "--format", fmt, "--out", str(root / out)]) == 0
    return root


def _latents(tiny_base, tmp_path, name, extra):
    out = tmp_path / f"{name}.gif"
    assert main(["generate", "--base", tiny_base, *ARGS, "--out", str(out),
                 "--save-latents", str(tmp_path / f"{name}.safetensors"), *extra]) == 0
    return next(iter(load_file(str(tmp_path / f"{name}.safetensors")).values()))


@pytest.mark.slow
def test_motion_adapter_and_lora_files_reproduce_the_native_video(tiny_base, exported, tmp_path):
    native = _latents(tiny_base, tmp_path, "native", ["--motion", str(exported / "native")])
    assert native.shape[2] == 12
    for name, lora in [("diffusers", "lora.safetensors"), ("kohya", "kohya.safetensors")]:
        other = _latents(tiny_base, tmp_path, name,
                         ["--motion", str(exported / "adapter"), "--lora", str(exported / lora)])
        assert (other - native).abs().max() <= 1e-4, name
    # without the LoRA the video differs: the comparison above is not vacuous
    bare = _latents(tiny_base, tmp_path, "bare", ["--motion", str(exported / "adapter")])
    assert (bare - native).abs().max() > 1e-3
