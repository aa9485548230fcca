"""The config tree: each part checks its own values, each command gets the flags of the parts it reads, and the flat
YAML form (saved configs, presets, configs from before the tree) reads back to the same config."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from ldm_video.cli import build_parser
from ldm_video.config import VideoUNetConfig
from ldm_video.errors import LdmVideoError
from ldm_video.train.config import (
    ContextFrames,
    ModelSources,
    Objective,
    Optimiser,
    TemporalLayers,
    TrainConfig,
    TrainData,
    Validation,
)
from ldm_video.train.parts import BaseModel, ClipData, Clips, RunSettings
from ldm_video.train.prepare_cmd import Encoding, PrepareConfig
from ldm_video.train.settings import config_from_dict, field_names, load_yaml, resolve_config, save_config
from ldm_video.vae.train_vae import TrainVAEConfig, VAEModel

PART_CHECKS = [
    (Clips, {"frames": 0}, "--frames must be >= 1, got 0"),
    (Clips, {"frames": 300}, "--frames 300: training clips are at most 256 frames"),
    (Clips, {"frame_stride": 0}, "--frame-stride must be >= 1"),
    (Clips, {"images": "movies"}, "--images must be one of pseudo-video, frame, off"),
    (ClipData, {"crop": "left"}, "--crop must be one of center, random"),
    (TrainData, {"cache": "c", "data": "d"}, "--cache and --data are alternatives"),
    (ModelSources, {"attention_backend": "flash"}, "--attention-backend must be one of sdpa, xformers"),
    (TemporalLayers, {"attention_heads": 0}, "--attention-heads must be >= 1"),
    (TemporalLayers, {"max_frames": 0}, "--max-frames must be >= 1"),
    (TemporalLayers, {"lora_rank": -1}, "--lora-rank must be >= 0"),
    (TemporalLayers, {"lora_alpha": 8.0}, "--lora-alpha needs --lora-rank > 0"),
    (TemporalLayers, {"conv_dropout": 1.0}, r"--conv-dropout must be in \[0, 1\)"),
    (TemporalLayers, {"temporal_layers": "lstm"}, "--temporal-layers must be one of attn, conv, attn\\+conv"),
    (Objective, {"noise_alpha": -1.0}, "--noise-alpha must be >= 0"),
    (Objective, {"timestep_bias_portion": 0.0}, "--timestep-bias-portion in"),
    (Objective, {"caption_dropout": 1.5}, r"--caption-dropout must be in \[0, 1\]"),
    (Objective, {"noise_prior": "pink"}, "--noise-prior must be one of"),
    (ContextFrames, {"context_frames": -1}, "--context-frames must be >= 0"),
    (ContextFrames, {"context_causal": True}, "--context-causal needs --context-frames N > 0"),
    (ContextFrames, {"context_prob": 0.5}, "--context-prob 0.5 needs --context-frames N > 0"),
    (ContextFrames, {"context_frames": 2, "context_prob": 0.0}, r"--context-prob must be in \(0, 1\]"),
    (ContextFrames, {"context_noise": 100}, "--context-noise 100 needs --context-frames N > 0"),
    (ContextFrames, {"context_frames": 2, "context_noise": -1}, "--context-noise must be >= 0"),
    (Optimiser, {"ema_decay": 1.0}, r"--ema-decay must be in \(0, 1\)"),
    (Optimiser, {"optimizer": "sgd"}, "--optimizer must be one of adamw, adamw8bit"),
    (Validation, {"validate_every": 5}, "--validate-every needs at least one --validation-prompt"),
    (Validation, {"validation_prompt": ("a kite",)}, "--validation-prompt needs --validate-every N"),
    (Validation, {"validation_steps": 0}, "--validation-steps must be >= 1"),
    (RunSettings, {"batch_size": 0}, "--batch-size must be >= 1"),
    (RunSettings, {"weight_decay": -0.1}, "--weight-decay must be >= 0"),
    (RunSettings, {"lr": 0.0}, "--lr must be > 0"),
    (RunSettings, {"overwrite": True, "resume": "latest"}, "--overwrite starts afresh and --resume continues"),
    (RunSettings, {"mixed_precision": "fp8"}, "--mixed-precision must be one of no, fp16, bf16"),
    (VAEModel, {"freeze_encoder": True}, "--freeze-encoder applies to --kind causal3d only"),
    (VAEModel, {"kl_weight": 1e-3}, "--kl-weight applies to --kind causal3d only"),
    (VAEModel, {"kind": "causal3d", "train_decoder": True}, "--train-decoder applies to --kind temporal-decoder only"),
    (VAEModel, {"kind": "causal3d", "freeze_encoder": True, "kl_weight": 1e-3}, "add --no-freeze-encoder"),
    (VAEModel, {"lpips_weight": -1.0}, "--lpips-weight must be >= 0"),
    (Encoding, {"repeats": 0}, "--repeats must be >= 1"),
]


@pytest.mark.parametrize("part,values,message", PART_CHECKS,
                         ids=[f"{p.__name__}-{'-'.join(v)}" for p, v, _ in PART_CHECKS])
def test_each_part_checks_its_own_values(part, values, message):
    part()  # the defaults pass
    with pytest.raises(LdmVideoError, match=message):
        part(**values)


def test_checks_that_span_parts_stay_on_the_config():
    with pytest.raises(LdmVideoError, match="--init-motion loads temporal attention"):
        TrainConfig.from_flat(init_motion="mm.safetensors", temporal_layers="conv")
    with pytest.raises(LdmVideoError, match=r"--context-frames must be in \[0, --frames\), got 8 with --frames 8"):
        TrainConfig.from_flat(frames=8, context_frames=8)
    with pytest.raises(LdmVideoError, match="--context-causal needs --temporal-layers attn and --motion-norm"):
        TrainConfig.from_flat(context_frames=2, context_causal=True)
    causal = TrainConfig.from_flat(context_frames=2, context_causal=True, motion_norm="per-frame")
    assert causal.video_unet_config().context_causal


def test_parts_stay_small_and_flag_names_unique():
    for tree in (TrainConfig, TrainVAEConfig, PrepareConfig):
        index = tree.field_index()  # raises on a name in two parts
        for _, part, _ in tree.parts():
            assert len(field_names(part)) <= 20, part.__name__
        assert len(index) == sum(len(field_names(part)) for _, part, _ in tree.parts())


def test_temporal_part_maps_by_name_onto_the_video_unet_config():
    unet = {f.name: f.default for f in dataclasses.fields(VideoUNetConfig)}
    part = TemporalLayers()
    for name in field_names(TemporalLayers):
        assert unet[name] == getattr(part, name), name  # the same defaults: VideoUNetConfig is their home
    config = TrainConfig.from_flat(attention_heads=4, conv_depth=2, lora_rank=4, lora_alpha=8.0, max_frames=8,
                                   frames=16, temporal_layers="attn+conv", mid_block=False, motion_norm="per-frame")
    built = config.video_unet_config()
    assert (built.attention_heads, built.conv_depth, built.lora_rank, built.lora_alpha, built.mid_block) == (
        4, 2, 4, 8.0, False)
    assert built.max_frames == 16 and config.video_unet_config(frames=24).max_frames == 24  # cover the clip
    assert built.temporal_layers == "attn+conv" and built.motion_norm == "per-frame" and not built.context_causal


def test_context_prob_defaults_by_context_frames():
    assert TrainConfig.from_flat().context.context_prob is None
    on = TrainConfig.from_flat(frames=8, context_frames=2)
    assert on.context.context_prob == 0.5 and on.context.prob == 0.5  # resolved, so the saved config says it
    assert ContextFrames(context_frames=2).prob == 0.5
    assert TrainConfig.from_flat(frames=8, context_frames=2, context_prob=0.25).context.prob == 0.25
    args = build_parser().parse_args(["train", "--context-prob", "0.5"])  # the default, given without the frames
    with pytest.raises(LdmVideoError, match="--context-prob 0.5 needs --context-frames"):
        resolve_config(args, TrainConfig)


def _flags(capsys, *argv: str) -> dict[str, str]:
    """--help of a command: {flag: its help text, whitespace collapsed}."""
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    text = capsys.readouterr().out
    flags, current = {}, None
    for line in text.splitlines():
        found = re.match(r"^  (--[a-z0-9-]+)(.*)$", line)
        if found:
            current = found.group(1)
            flags[current] = found.group(2)
        elif current and line.startswith("      "):
            flags[current] += " " + line.strip()
        else:
            current = None
    return {flag: " ".join(text.split()) for flag, text in flags.items()}


def test_plan_shows_only_the_flags_it_reads(capsys):
    plan = set(_flags(capsys, "plan"))
    train = set(_flags(capsys, "train"))
    assert plan < train | {"--gpu-memory"}
    for unread in ("--validation-prompt", "--caption-dropout", "--data", "--output-dir", "--lr", "--noise-prior",
                   "--context-frames", "--init-motion", "--vae", "--seed", "--resume", "--ema-decay"):
        assert unread in train and unread not in plan, unread
    for read in ("--base", "--frames", "--resolution", "--lora-rank", "--temporal-layers", "--batch-size",
                 "--mixed-precision", "--gradient-checkpointing", "--optimizer", "--ema", "--cache-latents",
                 "--config"):
        assert read in plan, read
    # and it still plans a whole train config: a preset's or a run's other settings are read, not refused
    args = build_parser().parse_args(["plan", "--config", "sd21-base-16x256", "--frames", "8"])
    config = resolve_config(args, TrainConfig)
    assert config.data.frames == 8 and config.optimiser.ema and config.run.lr_warmup_steps == 100


def test_train_vae_prepare_and_data_preview_share_the_data_flags(capsys):
    helps = {cmd: _flags(capsys, *cmd.split()) for cmd in ("train", "train-vae", "prepare", "data preview")}
    clips = [f"--{name.replace('_', '-')}" for name in field_names(Clips)]
    for cmd, flags in helps.items():
        assert set(clips) <= set(flags), cmd
    for flag in ("--frame-stride", "--fps", "--images"):  # one help text, written once
        assert len({helps[cmd][flag] for cmd in helps}) == 1, flag
    for flag in ("--crop", "--buckets"):  # train-vae always crops at random, without buckets
        assert flag in helps["prepare"] and flag in helps["data preview"] and flag not in helps["train-vae"]
    assert "(default: 9)" in helps["train-vae"]["--frames"] and "(default: 16)" in helps["prepare"]["--frames"]
    # the same flags give the same data part
    argv = ["--data", "clips", "--frames", "8", "--fps", "4", "--resolution", "64x96", "--images", "off"]
    parser = build_parser()
    train = resolve_config(parser.parse_args(["train", *argv, "--crop", "random", "--buckets"]), TrainConfig)
    prepare = resolve_config(parser.parse_args(["prepare", "--output-dir", "c", *argv, "--crop", "random",
                                                "--buckets"]), PrepareConfig)
    vae = resolve_config(parser.parse_args(["train-vae", *argv]), TrainVAEConfig)
    assert prepare.data == ClipData(**{n: getattr(train.data, n) for n in field_names(ClipData)})
    assert vae.data == Clips(**{n: getattr(train.data, n) for n in field_names(Clips)})
    assert prepare.data.data_config() == train.data.data_config()


def test_old_spellings_keep_their_meaning(capsys):
    parser = build_parser()
    args = parser.parse_args(["train-vae", "--steps", "3", "--gradient-accumulation", "2", "--output", "o"])
    config = resolve_config(args, TrainVAEConfig)
    assert (config.run.max_steps, config.run.grad_accum, config.run.output_dir) == (3, 2, "o")
    assert parser.parse_args(["prepare", "--output", "c", "--data", "d"]).output == "c"
    assert "is deprecated" in capsys.readouterr().err


def test_saved_config_reads_back_equal(tmp_path):
    config = TrainConfig.from_flat(
        base="some/base", vae="vae-run", frames=8, resolution="64x96", crop="random", buckets=True, cache_latents=True,
        temporal_layers="attn", motion_norm="per-frame", lora_rank=4, lora_alpha=8.0, noise_prior="progressive",
        noise_alpha=2.0, caption_dropout=0.2, context_frames=2, context_causal=True, context_noise=50, ema=True,
        validate_every=10, validation_prompt=("a kite", "a boat"), lr=3e-4, max_steps=7, resume="latest")
    path = save_config(config, tmp_path / "train_config.yaml")
    flat = yaml.safe_load(path.read_text())
    assert set(flat) == set(TrainConfig.field_index()) and flat["frames"] == 8  # flat, keyed by flag names
    args = build_parser().parse_args(["train", "--config", str(path)])
    assert resolve_config(args, TrainConfig) == config
    assert config_from_dict(config.to_dict(), TrainConfig) == config  # a checkpoint's copy
    vae = TrainVAEConfig.from_flat(kind="causal3d", frames=17, max_steps=3)
    path = save_config(vae, tmp_path / "vae.yaml")
    assert resolve_config(build_parser().parse_args(["train-vae", "--config", str(path)]), TrainVAEConfig) == vae
    assert vae.run.lr == 3e-5 and vae.vae.freeze_encoder  # the kind's defaults, recorded


# a train_config.yaml as ldm-video wrote it before the config tree (context_prob 0.5 recorded with context off)
LEGACY = """num_workers: 0
batch_size: 2
grad_accum: 4
lr: 0.0003
lr_scheduler: constant
lr_warmup_steps: 0
max_steps: 50
weight_decay: 0.01
max_grad_norm: 1.0
mixed_precision: 'no'
gradient_checkpointing: true
nan_patience: 5
seed: 3
output_dir: runs/old
checkpoint_every: 500
keep_checkpoints: 3
resume: null
overwrite: false
base: stabilityai/stable-diffusion-2-1-base
base_variant: null
temporal_layers: attn+conv
attention_heads: 8
attention_layers: 1
mid_block: true
max_frames: 32
conv_depth: 4
conv_dropout: 0.1
lora_rank: 0
lora_alpha: 0.0
motion_norm: all-frames
init_motion: null
vae: null
data: clips
cache: null
cache_latents: false
frames: 16
frame_stride: 1
fps: null
resolution: '256'
crop: center
buckets: false
images: pseudo-video
image_share: null
caption_dropout: 0.1
optimizer: adamw
noise_prior: mixed
noise_alpha: 1.0
timestep_bias: none
timestep_bias_multiplier: 1.0
timestep_bias_portion: 0.25
context_frames: 0
context_causal: false
context_prob: 0.5
context_noise: 0
attention_backend: sdpa
ema: false
ema_decay: 0.999
validate_every: 0
validation_prompt: []
validation_steps: 25
validation_guidance: 7.5
"""


def test_a_flat_config_from_before_the_tree_still_loads(tmp_path):
    path = tmp_path / "train_config.yaml"
    path.write_text(LEGACY)
    want = TrainConfig.from_flat(batch_size=2, grad_accum=4, lr=3e-4, max_steps=50, gradient_checkpointing=True,
                                 seed=3, output_dir="runs/old", temporal_layers="attn+conv", data="clips")
    assert resolve_config(build_parser().parse_args(["train", "--config", str(path)]), TrainConfig) == want
    assert config_from_dict(yaml.safe_load(LEGACY), TrainConfig) == want  # a checkpoint's state.json config
    # the recorded 0.5 is the old default: with --context-frames it is the new default too
    on = resolve_config(build_parser().parse_args(["train", "--config", str(path), "--context-frames", "4"]),
                        TrainConfig)
    assert on.context.prob == 0.5
    saved = save_config(on, tmp_path / "on.yaml")  # and a context run's config trains without context frames
    off = resolve_config(build_parser().parse_args(["train", "--config", str(saved), "--context-frames", "0"]),
                         TrainConfig)
    assert off.context.context_prob is None and off == want
    assert load_yaml(path, TrainConfig)["frames"] == 16


def test_every_preset_loads_into_the_tree():
    from ldm_video.train.settings import preset_names

    for name in preset_names():
        config = TrainConfig.from_flat(load_yaml(name, TrainConfig))
        assert config.run.mixed_precision == "bf16" and config.data.frames == 16 and config.temporal.temporal_layers


def test_base_part_is_shared():
    assert TrainConfig.parts()[0][1] is ModelSources and issubclass(ModelSources, BaseModel)
    assert PrepareConfig.parts()[0][1] is BaseModel and TrainVAEConfig.parts()[0][1] is BaseModel
