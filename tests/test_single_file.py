"""Single-file SD 2.x bases (`--base model.safetensors` / `.ckpt`): diffusers' from_single_file with the shipped
configs, offline; the variant rule; one-line refusals. Tiny models are converted to the original layout here."""

import argparse

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from ldm_video import load_base
from ldm_video.cli import main
from ldm_video.errors import BaseModelError
from ldm_video.infer.video_io import read_video
from ldm_video.ldm_layout import write_single_file
from ldm_video.single_file import SD2_DIR, choose_variant


@pytest.fixture(scope="module")
def files(tiny_base, tiny_base_v, tmp_path_factory):
    d = tmp_path_factory.mktemp("single")
    return {"epsilon": write_single_file(tiny_base, d / "tiny-2-1-base.safetensors"),
            "v_prediction": write_single_file(tiny_base_v, d / "tiny-2-1-768-v.ckpt")}


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_single_file_loads_the_folder_weights_exactly(files, tiny_base, tiny_base_v, prediction):
    folder = tiny_base if prediction == "epsilon" else tiny_base_v
    ref = load_base(folder)
    got = load_base(str(files[prediction]), variant=folder)
    assert got.prediction_type == prediction and got.scheduler.config.prediction_type == prediction
    for part in ("unet", "vae", "text_encoder"):
        a, b = getattr(ref, part).state_dict(), getattr(got, part).state_dict()
        assert set(a) == set(b), part
        assert all(torch.equal(a[k], b[k]) for k in a), part
    assert got.tokenizer("a red circle").input_ids == ref.tokenizer("a red circle").input_ids
    only = load_base(str(files[prediction]), components=("unet",), variant=folder)
    assert only.vae is None and only.text_encoder is None


def test_generate_and_train_take_a_single_file(files, tiny_base, tmp_path, capsys):
    from ldm_video import single_file
    from ldm_video.train.synthetic import write_test_video

    single_file._told.clear()  # the choice is named once per file and process; earlier tests loaded this one
    common = ["--prompt", "a red circle", "--frames", "4", "--clip-frames", "4", "--steps", "2",
              "--height", "16", "--width", "16", "--no-progress"]
    assert main(["generate", "--base", tiny_base, *common, "--out", str(tmp_path / "folder")]) == 0
    assert main(["generate", "--base", str(files["epsilon"]), "--base-variant", tiny_base, *common,
                 "--out", str(tmp_path / "file")]) == 0
    # same weights exactly (above); the U-Net output differs by ~1e-6 (memory alignment picks other CPU kernels)
    diff = np.abs(read_video(tmp_path / "folder").astype(int) - read_video(tmp_path / "file"))
    assert diff.max() <= 1 and diff.mean() < 0.05
    assert "loading as the configs in" in capsys.readouterr().err  # the choice is named
    data = tmp_path / "data"
    data.mkdir()
    write_test_video(data / "a.mp4", num_frames=6, height=32, width=32, seed=0)
    (data / "a.txt").write_text("a red circle")
    assert main(["train", "--base", str(files["epsilon"]), "--base-variant", tiny_base, "--data", str(data),
                 "--output-dir", str(tmp_path / "run"), "--frames", "4", "--resolution", "32", "--max-steps", "1",
                 "--temporal-layers", "attn", "--no-progress"]) == 0
    assert (tmp_path / "run" / "temporal_layers.safetensors").exists()


def _empty(path, header=None):
    save_file({"model.diffusion_model.x": torch.zeros(1), "cond_stage_model.model.token_embedding.weight":
               torch.zeros(1)}, str(path), metadata=header)
    return path


@pytest.mark.parametrize("name, header, sidecar, expected, reason", [
    ("v2-1_768-ema-pruned.safetensors", None, None, "2.1-768-v", "file name"),
    ("v2-1_512-ema-pruned.safetensors", None, None, "2.1-base", "file name"),
    ("sd21-base-finetune.safetensors", None, None, "2.1-base", "file name"),
    ("my_model_v.safetensors", None, None, "2.1-768-v", "file name"),
    ("my_model.safetensors", None, None, "2.1-base", "default"),
    ("model.safetensors", {"modelspec.architecture": "stable-diffusion-v2-768-v"}, None, "2.1-768-v", "header"),
    ("model.safetensors", {"ss_v2": "True", "ss_v_parameterization": "False"}, None, "2.1-base", "header"),
    ("model-768.safetensors", None, "parameterization: eps", "2.1-base", "LDM config"),
    ("model.safetensors", None, "parameterization: v", "2.1-768-v", "LDM config"),
])
def test_variant_rule(tmp_path, name, header, sidecar, expected, reason):
    path = _empty(tmp_path / name, header)
    if sidecar:
        (tmp_path / (path.stem + ".yaml")).write_text(f"model:\n  params:\n    {sidecar}\n")
    chosen = choose_variant(path)
    assert chosen.name == expected and reason in chosen.reason
    assert chosen.config_dir == SD2_DIR / expected
    assert choose_variant(path, "2.1-768-v" if expected == "2.1-base" else "2.1-base").name != expected  # the flag wins


def test_shipped_configs_describe_sd21(tmp_path):
    """The shipped folders build SD 2.1's real parts (on the meta device: shapes, no weights)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from ldm_video.base import check_base
    from ldm_video.sd2_configs import check_tokenizer

    check_tokenizer(SD2_DIR / "tokenizer")  # CLIP's ids for "a photo of a cat", pads with "!"
    for variant, prediction, size in (("2.1-base", "epsilon", 64), ("2.1-768-v", "v_prediction", 96)):
        folder = SD2_DIR / variant
        with init_empty_weights():
            unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder, subfolder="unet"))
            vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder, subfolder="vae"))
            text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder, subfolder="text_encoder"))
        assert sum(p.numel() for p in unet.parameters()) == 865_910_724
        assert round(sum(p.numel() for p in vae.parameters()) / 1e6, 1) == 83.7
        assert round(sum(p.numel() for p in text.parameters()) / 1e6) == 340
        assert unet.config.sample_size == size
        info = check_base(str(_empty(tmp_path / f"x-{variant}.safetensors")), variant)
        assert info["prediction_type"] == prediction and info["unet"]["cross_attention_dim"] == 1024


def test_bad_single_files_are_one_line_errors(files, tiny_base, tmp_path, capsys):
    sd15 = tmp_path / "sd15.safetensors"
    save_file({"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(4, 768),
               "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": torch.zeros(1)}, str(sd15))
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down_blocks_0.alpha": torch.tensor(4.0)}, str(lora))
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(files["epsilon"].read_bytes()[:5000])
    pickle = tmp_path / "objects.ckpt"
    torch.save({"state_dict": load_file(str(files["epsilon"])), "hyper_parameters": argparse.Namespace(lr=1.0)}, pickle)
    cases = [(sd15, "SD 1.x single file"), (lora, "no model.diffusion_model"), (truncated, "not a readable"),
             (tmp_path / "missing.safetensors", "not found"), (pickle, "weights_only"),
             (files["epsilon"], "could not load as SD 2.1-base")]  # tiny weights, full-size shipped config
    for path, words in cases:
        code = main(["generate", "--base", str(path), "--prompt", "x", "--frames", "2", "--steps", "1",
                     "--height", "16", "--width", "16", "--out", str(tmp_path / "x.mp4"), "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and words in err[-1] and str(path.name) in err[-1], (path, err)
        assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(BaseModelError, match="single-file bases only"):
        load_base(tiny_base, variant="2.1-base")
    with pytest.raises(BaseModelError, match="choose 2.1-base or 2.1-768-v"):
        load_base(str(files["epsilon"]), variant="2.2")
