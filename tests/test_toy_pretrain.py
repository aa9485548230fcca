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
    assert main(["toy", "pretrain", "--output-dir", str(out), "--recipe", str(tmp_path / "recipe.yaml"), "--seed", "7",
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
    assert main(["toy", "pretrain", "--output-dir", str(tmp_path / "o"), "--recipe", str(tmp_path / "r.yaml")]) == 2
    assert "not_a_field" in capsys.readouterr().err


def test_reusing_the_vae_of_an_earlier_run_changes_nothing(tmp_path):
    from safetensors.torch import load_file

    from ldm_video.errors import LdmVideoError
    from ldm_video.toy.pretrain import pretrain

    recipe = ToyRecipe(**TINY)
    pretrain(tmp_path / "a", recipe, progress=False, evaluate_after=False)
    pretrain(tmp_path / "b", recipe, progress=False, evaluate_after=False, reuse_vae=tmp_path / "a")
    for part, tol in (("vae", 0.0), ("text_encoder", 0.0), ("unet", 1e-3)):
        file = next((tmp_path / "a" / part).glob("*.safetensors")).name
        a, b = load_file(tmp_path / "a" / part / file), load_file(tmp_path / "b" / part / file)
        # the reused parts are the same tensors; the U-Net trains on the same data and noise, equal up to
        # float rounding in the latent encoding (seen: ~1e-4 after 2 steps)
        assert max((a[k] - b[k]).abs().max().item() for k in a) <= tol, part
    fresh = ToyRecipe(**{**TINY, "seed": 1})  # another seed really gives another U-Net
    pretrain(tmp_path / "d", fresh, progress=False, evaluate_after=False)
    file = next((tmp_path / "a" / "unet").glob("*.safetensors")).name
    a, d = load_file(tmp_path / "a" / "unet" / file), load_file(tmp_path / "d" / "unet" / file)
    assert max((a[k] - d[k]).abs().max().item() for k in a) > 1e-2
    with pytest.raises(LdmVideoError, match="vae_steps"):
        pretrain(tmp_path / "c", ToyRecipe(**{**TINY, "vae_steps": 3}), progress=False, evaluate_after=False,
                 reuse_vae=tmp_path / "a")


def test_a_recipe_names_the_shapes_its_base_draws(tmp_path):
    """The five-shape recipe draws and captions diamonds and bars; its VAE cannot stand in for a three-shape one."""
    from ldm_video.errors import LdmVideoError
    from ldm_video.toy import world
    from ldm_video.toy.pretrain import pretrain, render_frames

    with pytest.raises(ValueError, match="hexagon"):
        ToyRecipe(shapes=("circle", "hexagon"))
    frames, captions = render_frames(np.random.default_rng(0), 40, world.ALL_SHAPES)
    assert frames.shape == (40, 64, 64, 3)
    assert {world.parse_caption(c)[1] for c in captions} == set(world.ALL_SHAPES)
    # the three-shape recipe draws the frames it drew before the extra shapes existed (pinned then)
    frames, captions = render_frames(np.random.default_rng(0), 4)
    assert captions == ["a blue square moving up", "a green triangle moving down", "a green circle moving down",
                        "a yellow square moving left"]
    assert np.allclose([int(f.astype(np.int64).sum()) for f in frames], [2812914, 1547821, 285835, 2797586],
                       rtol=1e-6, atol=0)
    five = ToyRecipe(**{**TINY, "shapes": world.ALL_SHAPES})
    five.save(tmp_path / "recipe.yaml")
    assert ToyRecipe.load(tmp_path / "recipe.yaml") == five
    pretrain(tmp_path / "three", ToyRecipe(**TINY), progress=False, evaluate_after=False)
    from ldm_video.cli import main

    assert main(["toy", "pretrain", "--output-dir", str(tmp_path / "two"), "--recipe", str(tmp_path / "recipe.yaml"),
                 "--shapes", "bar", "diamond", "bar", "--no-eval"]) == 0
    assert ToyRecipe.load(tmp_path / "two" / "recipe.yaml").shapes == ("diamond", "bar")  # once each, in order
    assert ToyRecipe(shapes=("triangle", "circle", "circle")).shapes == ("circle", "triangle")
    with pytest.raises(LdmVideoError, match="shapes"):
        pretrain(tmp_path / "five", five, progress=False, evaluate_after=False, reuse_vae=tmp_path / "three")


def test_word_tokens_make_every_caption_word_one_token(tmp_path):
    """The word-level toy vocabulary: each caption word is one BPE token; other text still splits into
    characters; without words the tokenizer is the character-level one."""
    from transformers import CLIPTokenizer

    from ldm_video.testing import write_tiny_tokenizer
    from ldm_video.toy import world

    words = tuple(sorted({w for c in world.all_captions() for w in c.split()}))
    tok = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp_path / "words", words))
    for caption in world.all_captions():
        assert tok.convert_ids_to_tokens(tok(caption).input_ids)[1:-1] == [w + "</w>" for w in caption.split()]
    assert len(tok("hello").input_ids) == 2 + 5
    chars = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp_path / "chars"))
    assert len(chars("a red circle").input_ids) == 2 + 10
