"""Saving and loading temporal layers + LoRA apart from the base: bit-exact, and refused on another base."""

import json

import pytest
import torch
from safetensors import safe_open

from ldm_video import VideoUNetConfig, inflate_unet, load_base, load_temporal, save_temporal
from ldm_video.errors import CheckpointMismatchError, LdmVideoError


def _trained_model(base: str, **config):
    model = inflate_unet(load_base(base, components=("unet",)).unet, VideoUNetConfig(**config))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize("layers,rank", [("attn+conv", 4), ("attn", 0), ("conv", 2)])
def test_save_load_is_bit_exact(tiny_base, tmp_path, layers, rank):
    model = _trained_model(tiny_base, temporal_layers=layers, lora_rank=rank)
    save_temporal(model, tmp_path / "out", metadata={"num_frames": 8, "noise_prior": "progressive"})
    loaded = load_temporal(tmp_path / "out", load_base(tiny_base, components=("unet",)).unet).eval()
    assert loaded.config == model.config
    a, b = dict(model.named_parameters()), dict(loaded.named_parameters())
    assert a.keys() == b.keys()
    for name, param in a.items():
        assert torch.equal(param, b[name]), name
    x = torch.randn(1, 4, 3, 8, 8)
    text = torch.randn(1, 77, 32)
    with torch.no_grad():
        assert torch.equal(model(x, 5, text).sample, loaded(x, 5, text).sample)
    assert not list(tmp_path.joinpath("out").glob("*.tmp")), "temporary files left behind"


def test_file_records_base_and_metadata(tiny_base, tmp_path):
    model = _trained_model(tiny_base, temporal_layers="attn+conv")
    weights = save_temporal(model, tmp_path, metadata={"noise_prior": "mixed", "noise_alpha": 1.0})
    record = json.loads((tmp_path / "temporal_config.json").read_text())
    assert record["temporal"]["temporal_layers"] == "attn+conv"
    assert record["base"]["unet_config"]["block_out_channels"] == [32, 64]
    with safe_open(str(weights), "pt") as f:
        meta = f.metadata()
    assert meta["noise_prior"] == "mixed" and meta["base_unet_hash"] == record["base"]["unet_hash"]
    assert json.loads(meta["temporal_config"])["conv_depth"] == 4
    # the weights file alone is enough to load
    loaded = load_temporal(weights, load_base(tiny_base, components=("unet",)).unet)
    assert loaded.config == model.config


def test_loading_onto_another_base_is_refused(tiny_base, tiny_base_v, tmp_path):
    save_temporal(_trained_model(tiny_base), tmp_path)
    other = load_base(tiny_base_v, components=("unet",)).unet
    with pytest.raises(CheckpointMismatchError, match="not for this base .*sample_size"):
        load_temporal(tmp_path, other)


def test_loading_onto_a_differently_shaped_base_fails_even_when_not_strict(tiny_base, tmp_path):
    from diffusers import UNet2DConditionModel

    from ldm_video.testing import tiny_unet_config

    save_temporal(_trained_model(tiny_base), tmp_path)
    config = tiny_unet_config()
    config["block_out_channels"] = (64, 64)
    other = UNet2DConditionModel(**config)
    with pytest.raises(CheckpointMismatchError):
        load_temporal(tmp_path, other)
    with pytest.warns(UserWarning, match="loading anyway"), pytest.raises(CheckpointMismatchError, match="do not fit"):
        load_temporal(tmp_path, UNet2DConditionModel(**config), strict=False)


def test_missing_and_corrupt_checkpoints(tiny_base, tmp_path):
    unet = load_base(tiny_base, components=("unet",)).unet
    with pytest.raises(LdmVideoError, match="no such file"):
        load_temporal(tmp_path / "nope", unet)
    (tmp_path / "empty").mkdir()
    with pytest.raises(LdmVideoError, match="not an ldm-video temporal-layer folder"):
        load_temporal(tmp_path / "empty", unet)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(LdmVideoError, match="bad.safetensors"):
        load_temporal(bad, unet)
