"""Loading the SD 2.x base: both prediction types, and one-line refusals of what is not SD 2.x."""

import json
import shutil

import pytest

from ldm_video import load_base
from ldm_video.cli import main
from ldm_video.errors import BaseModelError
from ldm_video.testing import write_tiny_bare_unet, write_tiny_sd


def test_loads_both_prediction_types(tiny_base, tiny_base_v):
    eps = load_base(tiny_base)
    v = load_base(tiny_base_v, components=("unet", "scheduler"))
    assert eps.prediction_type == "epsilon" and v.prediction_type == "v_prediction"
    assert eps.vae_scale == pytest.approx(0.18215)  # read from the VAE config, never hard-coded
    assert v.vae is None and v.unet is not None
    assert not any(p.requires_grad for p in eps.unet.parameters())


def test_missing_path(tmp_path):
    with pytest.raises(BaseModelError, match="not found"):
        load_base(str(tmp_path / "nowhere"))


def test_sd15_folder_is_refused(tmp_path):
    path = write_tiny_sd(tmp_path / "sd15", shape="sd15")
    with pytest.raises(BaseModelError, match="SD 1.x-shaped"):
        load_base(str(path))


def test_bare_unet_is_refused(tmp_path):
    path = write_tiny_bare_unet(tmp_path / "unet")
    with pytest.raises(BaseModelError, match="bare UNet2DConditionModel folder"):
        load_base(str(path))


def test_sdxl_folder_is_refused(tiny_base, tmp_path):
    path = tmp_path / "xl"
    shutil.copytree(tiny_base, path)
    index = json.loads((path / "model_index.json").read_text())
    index["_class_name"] = "StableDiffusionXLPipeline"
    index["text_encoder_2"] = ["transformers", "CLIPTextModelWithProjection"]
    (path / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(BaseModelError, match="SDXL"):
        load_base(str(path))


def test_corrupt_weights_name_the_component(tiny_base, tmp_path):
    path = tmp_path / "broken"
    shutil.copytree(tiny_base, path)
    (path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(BaseModelError, match="could not load unet/"):
        load_base(str(path))


def test_cli_info_runs(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "diffusers" in out and "device" in out
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["versions"]["torch"]


def test_sd1_text_width_is_named_even_with_linear_projection(tmp_path):
    """A converted SD 1.x U-Net (use_linear_projection=True) is still named by its 768-wide text conditioning."""
    import json

    path = write_tiny_sd(tmp_path / "sd1x")
    config_file = path / "unet" / "config.json"
    config = json.loads(config_file.read_text())
    config["cross_attention_dim"] = 768
    config_file.write_text(json.dumps(config))
    with pytest.raises(BaseModelError, match="SD 1.x-shaped"):
        load_base(str(path))
