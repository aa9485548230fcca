"""`ldm-video train --vae`: the U-Net trains on latents of a video VAE from `ldm-video train-vae`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ldm_video.cli import main
from ldm_video.train.synthetic import write_test_video


@pytest.fixture(scope="module")
def setup(tiny_base, tmp_path_factory):
    from ldm_video.vae import CausalVAE
    from ldm_video.vae.loading import load_base_vae

    root = tmp_path_factory.mktemp("train-vae-latents")
    data = root / "clips"
    data.mkdir()
    for i in range(2):
        write_test_video(data / f"clip{i}.mp4", num_frames=12, height=32, width=32, seed=i)
        (data / f"clip{i}.txt").write_text(f"clip {i}")
    CausalVAE(load_base_vae(tiny_base), base=tiny_base).save(root / "c3d")
    return root


def _train(tiny_base, root: Path, out: str, frames: str, *extra: str) -> int:
    return main(["train", "--base", tiny_base, "--data", str(root / "clips"), "--output-dir", str(root / out),
                 "--frames", frames, "--resolution", "32", "--max-steps", "2", "--attention-heads", "8",
                 "--conv-depth", "2", "--vae", str(root / "c3d"), *extra])


def test_train_with_causal_vae_runs_on_its_latent_frames(tiny_base, setup):
    assert _train(tiny_base, setup, "run", "9") == 0  # 9 = 4*2+1 frames -> 3 latent frames
    weights = load_file(str(setup / "run" / "temporal_layers.safetensors"))
    assert weights and all(torch.isfinite(v).all() for v in weights.values())


def test_train_with_causal_vae_refuses_frames_off_4f_plus_1(tiny_base, setup, capsys):
    assert _train(tiny_base, setup, "bad", "8") == 2
    assert "nearest valid lengths: 5 or 9" in capsys.readouterr().err


def test_cache_made_without_the_vae_is_refused(tiny_base, setup, capsys):
    assert main(["prepare", "--base", tiny_base, "--data", str(setup / "clips"), "--output-dir", str(setup / "cache"),
                 "--frames", "9", "--resolution", "32", "--dtype", "fp32"]) == 0
    assert main(["train", "--base", tiny_base, "--cache", str(setup / "cache"), "--output-dir", str(setup / "c"),
                 "--frames", "9", "--resolution", "32", "--max-steps", "1", "--vae", str(setup / "c3d")]) == 2
    assert "--vae" in capsys.readouterr().err
