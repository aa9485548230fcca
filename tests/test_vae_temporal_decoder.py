"""Temporal-aware decoder (SPEC §5): identity at init, true num_frames, save/load and mismatch refusal."""

from __future__ import annotations

import json

import pytest
import torch
from einops import rearrange

from ldm_video.errors import CheckpointMismatchError, LdmVideoError
from ldm_video.vae.temporal_decoder import (
    TemporalDecoderConfig,
    TemporalDecoderVAE,
    load_base_vae,
    load_temporal_decoder,
)


@pytest.fixture(scope="module")
def base_vae(tiny_base):
    return load_base_vae(tiny_base)


def _perturb(model: TemporalDecoderVAE, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.temporal.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def test_identity_at_init_equals_2d_decoder_per_frame(base_vae, tiny_base):
    model = TemporalDecoderVAE(base_vae, base=tiny_base).eval()
    z = torch.randn(2, 4, 5, 4, 4, generator=torch.Generator().manual_seed(0))  # (b, 4, f, h, w)
    with torch.no_grad():
        ours = model.decode_frames(z)  # (b, 3, f, 32, 32)
        ref = base_vae.decode(rearrange(z, "b c f h w -> (b f) c h w")).sample
    ref = rearrange(ref, "(b f) c h w -> b c f h w", b=2)
    assert ours.shape == (2, 3, 5, 32, 32)
    assert (ours - ref).abs().max().item() <= 1e-5
    # the scaled interface agrees too, and encoding is the frozen 2D encoder's posterior mean
    video = torch.rand(1, 3, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        lat = model.encode(video)
        ref_lat = base_vae.encode(rearrange(video, "b c f h w -> (b f) c h w")).latent_dist.mode()
    assert lat.shape == (1, 4, 3, 4, 4)
    ref_lat = rearrange(ref_lat, "(b f) c h w -> b c f h w", b=1) * base_vae.config.scaling_factor
    assert (lat - ref_lat).abs().max().item() <= 1e-5


def test_temporal_layers_see_the_true_num_frames(base_vae):
    model = TemporalDecoderVAE(base_vae).eval()
    _perturb(model)
    z = torch.randn(1, 4, 4, 4, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = model.decode_frames(z)
        per_frame = torch.cat([model.decode_frames(z[:, :, i:i + 1]) for i in range(4)], dim=2)
        ref = rearrange(base_vae.decode(rearrange(z, "b c f h w -> (b f) c h w")).sample,
                        "(b f) c h w -> b c f h w", b=1)
    # frames interact once the stacks are non-zero; a single frame skips them (== 2D decoder)
    assert (whole - per_frame).abs().max().item() > 1e-3
    # (batches of 1 and 4 frames take different float paths through the 2D decoder's convolutions: 1.02e-5 was seen)
    assert (per_frame - ref).abs().max().item() <= 1e-4
    # the interface's decode runs the stacks on whole chunks
    with torch.no_grad():
        via_api = model.decode(z * model.scaling_factor)
    assert (via_api - whole).abs().max().item() <= 1e-5


def test_only_temporal_layers_train_by_default(base_vae):
    model = TemporalDecoderVAE(base_vae)
    params = model.set_trainable(train_decoder=False)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.startswith("temporal.") for n in names)
    assert len(params) == len(names)
    # three units per stack, last conv zero, one stack per ResNet of every up block
    n_resnets = sum(len(b.resnets) for b in base_vae.decoder.up_blocks)
    assert sum(len(s) for s in model.temporal) == n_resnets
    assert model.temporal[0][0].layers[-1].weight.abs().sum() == 0
    assert sum(isinstance(m, torch.nn.Conv3d) for m in model.temporal[0][0].layers) == 3
    model.set_trainable(train_decoder=True)
    assert all(p.requires_grad for p in model.vae.decoder.parameters())
    assert not any(p.requires_grad for p in model.vae.encoder.parameters())
    model.vae.requires_grad_(False)


def test_save_load_roundtrip_and_mismatch(base_vae, tiny_base, tmp_path):
    model = TemporalDecoderVAE(base_vae, TemporalDecoderConfig(dropout=0.0), base=tiny_base).eval()
    _perturb(model, seed=3)
    out = model.save(tmp_path / "td", metadata={"step": 7})
    cfg = json.loads((out / "video_vae.json").read_text())
    assert cfg["kind"] == "temporal-decoder" and cfg["base_vae_config"]["latent_channels"] == 4
    assert not list(tmp_path.glob(".td.tmp-*"))  # atomic: no temporary folder left behind
    loaded = load_temporal_decoder(out)  # base taken from the folder
    z = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(loaded.decode_frames(z), model.decode_frames(z))
    # a base VAE of another shape is refused with CheckpointMismatchError
    from diffusers import AutoencoderKL

    from ldm_video.testing import tiny_vae_config

    other = AutoencoderKL(**{**tiny_vae_config(), "block_out_channels": (32, 32, 64, 96)})
    with pytest.raises(CheckpointMismatchError, match="block_out_channels"):
        load_temporal_decoder(out, base_vae=other)
    # same shape, different weights: refused too
    torch.manual_seed(123)
    same_shape = AutoencoderKL(**tiny_vae_config())
    with pytest.raises(CheckpointMismatchError, match="encoder weights"):
        load_temporal_decoder(out, base_vae=same_shape)
    with pytest.raises(LdmVideoError, match="not a video VAE folder"):
        load_temporal_decoder(tmp_path)


def test_failed_save_leaves_the_old_folder(base_vae, tmp_path):
    model = TemporalDecoderVAE(base_vae, base="x")
    out = model.save(tmp_path / "td")
    before = (out / "video_vae.safetensors").read_bytes()

    def boom(path):
        raise OSError("disk full")

    _perturb(model, seed=9)
    with pytest.raises(OSError, match="disk full"):
        model.save(out, extra={"optimizer.safetensors": boom})
    assert (out / "video_vae.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["td"]  # no temporary folder left
