"""Latent caching (`ldm-video prepare`, `train --cache-latents`) and validation videos."""

from __future__ import annotations

import json

import pytest
import torch

from ldm_video.errors import LdmVideoError
from ldm_video.train.cache import LatentCacheDataset, cache_seed
from ldm_video.train.config import TrainConfig
from ldm_video.train.synthetic import write_test_image, write_test_video
from ldm_video.train.trainer import train


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    for i in range(2):
        write_test_video(d / f"v{i}.mp4", num_frames=8, height=32, width=40, seed=i)
        (d / f"v{i}.txt").write_text(f"video {i}")
    write_test_image(d / "still.jpg")
    return d


def test_prepare_stores_scaled_latents_and_text(tmp_path, tiny_base, media):
    from ldm_video.base import load_base
    from ldm_video.cli import main
    from ldm_video.text import encode_prompts
    from ldm_video.train.data import DataConfig, VideoFolderDataset
    from ldm_video.train.encode import encode_video

    cache = tmp_path / "cache"
    assert main(["prepare", "--base", tiny_base, "--data", str(media), "--output-dir", str(cache), "--frames", "4",
                 "--resolution", "32", "--images", "frame", "--dtype", "fp32"]) == 0
    index = json.loads((cache / "index.json").read_text())
    assert len(index["samples"]) == 3 and index["vae_scaling_factor"] == pytest.approx(0.18215)
    ds = LatentCacheDataset(cache)
    base = load_base(tiny_base, ("vae", "text_encoder", "tokenizer"))
    items = VideoFolderDataset(DataConfig(root=str(media), num_frames=4, resolution=32, images="frame"))
    for i, entry in enumerate(index["samples"]):
        got = ds[(i, 0)]
        sample = items[(i, cache_seed(0, 0, i))]
        want = encode_video(base.vae, sample["pixel_values"][None], torch.Generator().manual_seed(cache_seed(0, 0, i)))
        assert torch.allclose(got["latents"], want[0], atol=1e-5)  # scaled by vae.config.scaling_factor
        assert got["latents"].shape == (4, 1 if entry["kind"] == "image" else 4, 4, 4)
        text = encode_prompts(base.tokenizer, base.text_encoder, [sample["caption"]])[0]
        assert torch.allclose(got["text"], text, atol=1e-5)
    assert main(["prepare", "--base", tiny_base, "--data", str(media), "--output-dir", str(cache)]) == 2  # exists
    bad = TrainConfig.from_flat(base=tiny_base, cache=str(cache), output_dir=str(tmp_path / "o"), frames=8, resolution="32")
    with pytest.raises(LdmVideoError, match="4-frame clips"):
        train(bad, progress=False)
    other_images = TrainConfig.from_flat(base=tiny_base, cache=str(cache), output_dir=str(tmp_path / "o"), frames=4,
                               resolution="32", images="pseudo-video")
    with pytest.raises(LdmVideoError, match="made with --images frame"):
        train(other_images, progress=False)
    with pytest.raises(LdmVideoError, match="alternatives"):
        TrainConfig.from_flat(base=tiny_base, cache=str(cache), data=str(media))


@pytest.mark.slow
def test_train_cache_latents_without_vae_and_validation_mp4(tmp_path, tiny_base, media, monkeypatch):
    from ldm_video.train import setup as setup_module
    from ldm_video.train.decode import probe_video

    seen = {}
    real_setup = setup_module.setup_run

    def spy(config, **kwargs):
        run = real_setup(config, **kwargs)
        seen["vae"], seen["text_encoder"] = run.base.vae, run.base.text_encoder
        return run

    monkeypatch.setattr("ldm_video.train.trainer.setup_run", spy)
    out = tmp_path / "o"
    cfg = TrainConfig.from_flat(base=tiny_base, data=str(media), cache_latents=True, output_dir=str(out), frames=4,
                      resolution="32", max_steps=2, validate_every=2, validation_prompt=("a red ball",),
                      validation_steps=2, ema=True, conv_depth=2)
    result = train(cfg, progress=False)
    assert result.step == 2
    assert seen == {"vae": None, "text_encoder": None}  # training ran without VAE and text encoder
    assert (out / "latent-cache" / "index.json").is_file()
    video = out / "validation" / "step-0000002-0.mp4"
    info = probe_video(video)
    assert (info.num_frames, info.height, info.width) == (4, 32, 32)
    assert (out / "temporal_layers.safetensors").is_file()
