"""`ldm-video toy pretrain` writes a loadable SD 2.1-layout pipeline; a recipe round-trips through YAML."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ldm_video.toy.pretrain import ToyRecipe

TINY = {"vae_channels": (8, 8, 16, 16), "unet_channels": (32, 32), "unet_heads": (1, 1), "text_hidden": 32,
            "vae_steps": 2, "vae_batch": 2, "unet_steps": 2, "unet_batch": 4, "unet_warmup": 1, "latent_cache": 16}


def test_recipe_roundtrip(tmp_path):
    recipe = ToyRecipe(seed=3, unet_channels=(16, 32))
    recipe.save(tmp_path / "recipe.yaml")
    assert ToyRecipe.load(tmp_path / "recipe.yaml") == recipe
    (tmp_path / "bad.yaml").write_text("seed: 1\nlearning_rate: 2\n")
    with pytest.raises(ValueError, match="learning_rate"):
        ToyRecipe.load(tmp_path / "bad.yaml")


def test_pretrain_cli_writes_a_base_that_load_base_accepts(tmp_path, capsys):
    from ldm_video.base import check_base, load_base
    from ldm_video.cli import main
    from ldm_video.toy.pretrain import sample_images

    ToyRecipe(**TINY).save(tmp_path / "recipe.yaml")
    out = tmp_path / "base"
    assert main(["toy", "pretrain", "--out", str(out), "--recipe", str(tmp_path / "recipe.yaml"), "--seed", "7",
                 "--unet-steps", "3", "--no-eval"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size_bytes"] > 0 and "eval" not in report
    assert ToyRecipe.load(out / "recipe.yaml") == ToyRecipe(**{**TINY, "seed": 7, "unet_steps": 3})
    assert not list(tmp_path.glob("*.tmp")) and not (out / "_tokenizer").exists()
    assert check_base(str(out))["prediction_type"] == "epsilon"
    base = load_base(str(out))
    assert base.unet.config.use_linear_projection and base.unet.config.cross_attention_dim == 32
    assert base.vae.config.scaling_factor != 0.18215  # measured from the latents, not copied
    assert len(base.vae.config.block_out_channels) == 4  # 8x down-sampling
    images = sample_images(base, ["a red circle moving left"], steps=2, guidance=3.0,
                           generator=torch.Generator().manual_seed(0))
    assert images.shape == (1, 64, 64, 3) and images.dtype == np.uint8


def test_pretrain_cli_rejects_bad_recipe(tmp_path, capsys):
    from ldm_video.cli import main

    (tmp_path / "r.yaml").write_text("seed: 1\nnot_a_field: 2\n")
    assert main(["toy", "pretrain", "--out", str(tmp_path / "o"), "--recipe", str(tmp_path / "r.yaml")]) == 2
    assert "not_a_field" in capsys.readouterr().err
