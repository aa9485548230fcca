"""`ldm-video plan`: the memory estimate on fake tensors, its split, the knobs it suggests, the presets."""

from __future__ import annotations

import time

import pytest
import torch

from ldm_video.errors import LdmVideoError
from ldm_video.train.config import TrainConfig
from ldm_video.train.plan import estimate_memory, format_plan, knobs_to_fit
from ldm_video.train.settings import config_path, load_yaml, preset_names


def _cfg(base: str, **kw) -> TrainConfig:
    settings = {"base": base, "frames": 4, "resolution": "32", "conv_depth": 2}
    settings.update(kw)
    return TrainConfig.from_flat(**settings)


@pytest.mark.slow
def test_plan_split_matches_the_real_model(tiny_base):
    from ldm_video import VideoUNetConfig, inflate_unet
    from ldm_video.base import load_base

    plan = estimate_memory(_cfg(tiny_base, cache_latents=True))
    base = load_base(tiny_base, ("unet",))
    n_frozen = sum(p.numel() for p in base.unet.parameters())
    model = inflate_unet(base.unet, VideoUNetConfig(conv_depth=2))
    n_train = sum(p.numel() for p in model.trainable_parameters())
    assert plan.trainable_params == n_train and plan.frozen_params == n_frozen
    assert plan.frozen_weights == 4 * n_frozen and plan.trainable_weights == plan.gradients == 4 * n_train
    assert plan.optimizer_states == 8 * n_train  # AdamW moments
    assert plan.activations > 0
    assert plan.total == sum((plan.frozen_weights, plan.trainable_weights, plan.gradients,
                              plan.optimizer_states, plan.activations))


@pytest.mark.slow
def test_knobs_move_the_estimate_the_right_way(tiny_base):
    video = {"frames": 8, "resolution": "64", "cache_latents": True, "optimizer": "adamw8bit"}  # activation-bound
    plain = estimate_memory(_cfg(tiny_base, **video))
    ckpt = estimate_memory(_cfg(tiny_base, **video, gradient_checkpointing=True))
    bf16 = estimate_memory(_cfg(tiny_base, **video, mixed_precision="bf16"))
    longer = estimate_memory(_cfg(tiny_base, **{**video, "frames": 16}))
    assert ckpt.activations < plain.activations < longer.activations
    assert bf16.frozen_weights * 2 == plain.frozen_weights and bf16.activations < plain.activations
    assert plain.optimizer_states == int((2 + 8 / 256) * plain.trainable_params)  # 8-bit moments
    resident = {"ema": True, "gradient_checkpointing": True, "mixed_precision": "bf16"}
    ema = estimate_memory(_cfg(tiny_base, **resident))  # not cached: VAE and text encoder are resident
    assert ema.frozen_params > plain.frozen_params
    assert ema.optimizer_states == 12 * ema.trainable_params  # AdamW moments + the EMA copy
    assert ema.frozen_weights == 2 * ema.frozen_params  # bf16
    knobs = knobs_to_fit(_cfg(tiny_base, **resident), ema)
    text = format_plan(_cfg(tiny_base, **resident), ema, budget_gb=ema.total / 2e9, knobs=knobs)
    assert "fits in --gpu-memory" in text and ": NO" in text
    for flag in ("--optimizer adamw8bit", "--cache-latents", "--no-ema", "all of the above"):
        assert flag in text
    assert "--gradient-checkpointing" not in text.split("to make it fit")[1]  # already on
    assert dict(knobs)["--no-ema"] == ema.total - 4 * ema.trainable_params


@pytest.mark.slow
def test_plan_cli_on_the_real_sd21_shapes(capsys):
    from ldm_video.cli import main

    torch.set_num_threads(1)
    start = time.perf_counter()
    assert main(["plan", "--config", "sd21-base-16x256"]) == 0
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    assert "865.9M params" in out  # the real SD 2.1 U-Net, frozen
    assert "fits in --gpu-memory 24 GB: yes" in out
    assert elapsed < 60


def test_presets_resolve_and_load():
    assert set(preset_names()) >= {"sd21-base-16x256", "sd21-base-16x512", "sd21-768v-16x256"}
    for name in preset_names():
        values = load_yaml(name, TrainConfig)
        assert values["frames"] == 16 and TrainConfig.from_flat(values).run.mixed_precision == "bf16"
    assert config_path("sd21-768v-16x256").name == "sd21-768v-16x256.yaml"
    with pytest.raises(LdmVideoError, match="no such config file or preset"):
        config_path("no-such-preset")
    with pytest.raises(LdmVideoError, match="plan needs a local"):
        estimate_memory(TrainConfig.from_flat(base="someone/other-model"))
