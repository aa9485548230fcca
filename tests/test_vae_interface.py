"""The common video-VAE interface and `load_video_vae` (every kind from a folder, the 2D VAE from a base)."""

from __future__ import annotations

import pytest
import torch

from ldm_video.errors import CheckpointMismatchError, LdmVideoError
from ldm_video.vae import (
    CausalVAE,
    ImageVAE,
    TemporalDecoderVAE,
    VideoVAE,
    load_base_vae,
    load_video_vae,
)


@pytest.fixture(scope="module")
def saved(tiny_base, tmp_path_factory):
    root = tmp_path_factory.mktemp("vaes")
    base_vae = load_base_vae(tiny_base)
    TemporalDecoderVAE(base_vae, base=tiny_base).save(root / "td")
    CausalVAE(load_base_vae(tiny_base), base=tiny_base).save(root / "c3d")
    return root


@pytest.mark.parametrize("which,cls,latent_frames", [
    ("base", ImageVAE, 5), ("td", TemporalDecoderVAE, 5), ("c3d", CausalVAE, 2),
])
def test_every_kind_satisfies_the_interface(which, cls, latent_frames, saved, tiny_base):
    vae = load_video_vae(tiny_base if which == "base" else saved / which, base=tiny_base)
    assert isinstance(vae, VideoVAE) and isinstance(vae, cls)
    assert not any(p.requires_grad for p in vae.parameters()) and not vae.training
    assert vae.scaling_factor == pytest.approx(0.18215) and vae.latent_channels == 4
    assert vae.spatial_compression == 8
    video = torch.rand(2, 3, 5, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        lat = vae.encode(video)
        assert lat.shape == (2, 4, latent_frames, 4, 4) and vae.latent_frames(5) == latent_frames
        out = vae.decode(lat)
        assert out.shape == (2, 3, 5, 32, 32)
        parts = list(vae.decode_chunks(lat, chunk_frames=1))
    assert len(parts) == latent_frames
    # all three are the 2D SD VAE at initialisation: same reconstruction of frame 0
    ref = load_video_vae(tiny_base)
    with torch.no_grad():
        ref_out = ref.decode(ref.encode(video[:, :, :1]))
    assert (out[:, :, :1] - ref_out).abs().max().item() <= 3e-5  # float32 rounding differs per CPU (1.4e-5 seen)
    if cls is not TemporalDecoderVAE:  # chunks of one frame change what the temporal convs see
        assert (torch.cat(parts, dim=2) - out).abs().max().item() <= 3e-5


def test_bad_inputs(saved, tiny_base, tmp_path):
    with pytest.raises(LdmVideoError, match="no such folder|not found"):
        load_video_vae(tmp_path / "nothing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(LdmVideoError, match="found a file"):
        load_video_vae(tmp_path / "file.txt")
    vae = load_video_vae(saved / "c3d")
    with pytest.raises(LdmVideoError, match=r"video must be \(b, 3"):
        vae.encode(torch.zeros(3, 5, 32, 32))
    with pytest.raises(LdmVideoError, match="nearest valid lengths: 5 or 9"):
        vae.encode(torch.zeros(1, 3, 7, 32, 32))
    # a causal VAE inflated from another SD VAE is refused next to a base it does not fit
    import json

    cfg_path = saved / "c3d" / "video_vae.json"
    cfg = json.loads(cfg_path.read_text())
    other = tmp_path / "other"
    other.mkdir()
    cfg["base_vae_config"]["scaling_factor"] = 0.13025
    (other / "video_vae.json").write_text(json.dumps(cfg))
    (other / "video_vae.safetensors").write_bytes((saved / "c3d" / "video_vae.safetensors").read_bytes())
    with pytest.raises(CheckpointMismatchError, match="scaling_factor"):
        load_video_vae(other, base=tiny_base)


@pytest.mark.parametrize("kind", ["td", "c3d"])
def test_gradient_checkpointing_gives_the_same_gradients(kind, tiny_base):
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        base_vae = load_base_vae(tiny_base)
        model = TemporalDecoderVAE(base_vae) if kind == "td" else CausalVAE(base_vae)
        if kind == "td":
            model.set_trainable(train_decoder=True)
        else:
            model.requires_grad_(True)
        if checkpointing:
            model.enable_gradient_checkpointing()
        model.train()
        video = torch.rand(1, 3, 5, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
        torch.manual_seed(2)  # dropout
        recon, _ = model(video, generator=torch.Generator().manual_seed(3))
        (recon - video).abs().mean().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    assert max((grads[0][k] - grads[1][k]).abs().max().item() for k in grads[0]) <= 1e-6
