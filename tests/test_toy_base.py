"""The shipped toy base (ldm_video/toy/assets/base): small, safetensors only, loads with load_base, samples."""

from __future__ import annotations

import json

import numpy as np
import torch

from ldm_video.toy import TOY_BASE
from ldm_video.toy.pretrain import ToyRecipe


def test_shipped_files_are_small_safetensors_with_recipe_and_report():
    files = [f for f in TOY_BASE.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) <= 20 * 2**20
    weights = [f for f in files if f.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt")]
    assert {f.parent.name for f in weights} == {"unet", "vae", "text_encoder"}
    assert all(f.suffix == ".safetensors" for f in weights)  # never pickle
    recipe = ToyRecipe.load(TOY_BASE / "recipe.yaml")
    report = json.loads((TOY_BASE / "report.json").read_text())
    assert report["eval"]["colour_and_shape_right"] >= 0.8  # the recorded acceptance check of this recipe
    assert report["eval"]["guidance"] == recipe.eval_guidance


def test_shipped_base_loads_with_load_base_and_samples():
    from ldm_video.base import load_base
    from ldm_video.toy.pretrain import sample_images

    base = load_base(str(TOY_BASE))
    assert base.prediction_type == "epsilon" and base.unet.config.use_linear_projection
    assert base.vae_scale == base.vae.config.scaling_factor
    images = sample_images(base, ["a red circle moving left"], steps=4, guidance=5.0,
                           generator=torch.Generator().manual_seed(0))
    assert images.shape == (1, 64, 64, 3) and images.dtype == np.uint8
    assert images.std() > 5  # a picture, not a constant
