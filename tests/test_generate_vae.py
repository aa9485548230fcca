"""`--vae`: decoding with VidRD's temporal-aware decoder (SPEC §5) at its true frame count, streamed by chunk."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ldm_video.cli import main
from ldm_video.infer.video_io import read_video
from ldm_video.video_file import to_uint8


@pytest.fixture(scope="module")
def vaes(tiny_base, tmp_path_factory):
    """Temporal decoders at init and with random temporal layers, and a causal 3D VAE."""
    from ldm_video.vae import CausalVAE, TemporalDecoderVAE
    from ldm_video.vae.loading import load_base_vae

    root = tmp_path_factory.mktemp("vaes")
    TemporalDecoderVAE(load_base_vae(tiny_base), base=tiny_base).save(root / "td-init")
    trained = TemporalDecoderVAE(load_base_vae(tiny_base), base=tiny_base)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in trained.temporal.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    trained.save(root / "td")
    CausalVAE(load_base_vae(tiny_base), base=tiny_base).save(root / "c3d")
    return root


# VidRD's mirrored order, whose seam drop of 1 the frame layouts below are written for
ARGS = ["--prompt", "x", "--frames", "10", "--clip-frames", "4", "--overlap", "2", "--steps", "2",
        "--height", "16", "--width", "16", "--decode-chunk", "3", "--reuse-order", "reversed", "--no-progress"]


@pytest.mark.slow
def test_temporal_decoder_at_init_decodes_like_the_sd_vae(tiny_base, vaes, tmp_path):
    assert main(["generate", "--base", tiny_base, *ARGS, "--out", str(tmp_path / "sd")]) == 0
    assert main(["generate", "--base", tiny_base, *ARGS, "--vae", str(vaes / "td-init"),
                 "--out", str(tmp_path / "td")]) == 0
    assert np.abs(read_video(tmp_path / "sd").astype(int) - read_video(tmp_path / "td")).max() <= 1


@pytest.mark.slow
def test_trained_temporal_decoder_is_used_with_the_chunks_true_frames(tiny_base, vaes, tmp_path):
    from ldm_video.vae import load_video_vae

    out, lat = tmp_path / "v", tmp_path / "z.safetensors"
    assert main(["generate", "--base", tiny_base, *ARGS, "--vae", str(vaes / "td"), "--out", str(out),
                 "--save-latents", str(lat)]) == 0
    assert main(["generate", "--base", tiny_base, *ARGS, "--out", str(tmp_path / "sd")]) == 0
    frames = read_video(out)
    assert np.abs(frames.astype(int) - read_video(tmp_path / "sd")).max() > 2  # the temporal layers act
    vae = load_video_vae(vaes / "td", base=tiny_base)
    latents = load_file(str(lat))["latents"]  # (1, 4, 10, 2, 2)
    with torch.no_grad():
        # clips keep 4, 3, 3 frames (--seam-drop 1), each decoded in chunks of 3: [0:3] [3:4] [4:7] [7:10]
        chunks = [vae.decode(latents[:, :, a:b], chunk_frames=3) for a, b in [(0, 3), (3, 4), (4, 7), (7, 10)]]
    expected = to_uint8(torch.cat(chunks, dim=2)[0].permute(1, 0, 2, 3)).numpy()  # (10, 16, 16, 3)
    assert np.abs(expected.astype(int) - frames).max() <= 1


@pytest.mark.slow
def test_causal_vae_generates_4f_plus_1_frames_streamed_across_clips(tiny_base, vaes, tmp_path, capsys):
    """--frames 21 -> 6 latent frames in clips of 4 (seam-drop 1: 4 + 2); one conv cache spans the clips."""
    from ldm_video.vae import load_video_vae

    args = [a for a in ARGS if a not in ("10",)]
    args[args.index("--frames") + 1:args.index("--frames") + 1] = ["21"]
    out, lat = tmp_path / "c.mp4", tmp_path / "z.safetensors"
    assert main(["generate", "--base", tiny_base, *args, "--vae", str(vaes / "c3d"), "--out", str(out),
                 "--save-latents", str(lat)]) == 0
    frames = read_video(tmp_path / "c.mp4")
    assert frames.shape[0] == 21
    latents = load_file(str(lat))["latents"]
    assert latents.shape[2] == 6
    with torch.no_grad():  # streamed decode == one-shot decode of the same latents
        expected = to_uint8(load_video_vae(vaes / "c3d", base=tiny_base).decode(latents)[0].permute(1, 0, 2, 3))
    # compare through PNGs to avoid H.264 loss
    assert main(["generate", "--base", tiny_base, *args, "--vae", str(vaes / "c3d"),
                 "--out", str(tmp_path / "png")]) == 0
    assert np.abs(expected.numpy().astype(int) - read_video(tmp_path / "png")).max() <= 1
    # lengths off the 4f+1 rule are refused, naming the nearest valid ones
    args[args.index("--frames") + 1] = "20"
    assert main(["generate", "--base", tiny_base, *args, "--vae", str(vaes / "c3d"),
                 "--out", str(tmp_path / "bad.mp4")]) == 2
    assert "nearest valid lengths: 17 or 21" in capsys.readouterr().err
