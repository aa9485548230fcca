"""The training configurations: one frozen dataclass per trainer (`TrainConfig` here, `TrainVAEConfig` for
train-vae), one machinery for all of them: CLI flags, `--config FILE.yaml` and the saved `train_config.yaml`
are three views of a config. Precedence: dataclass defaults < YAML file < flags given. Fields carry their help
text; a class's `SECTIONS` groups its flags in --help and `DEPRECATED` maps old flag spellings (still accepted
for one release, with a one-line notice) to fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import yaml

from ldm_video.base import DEFAULT_BASE
from ldm_video.errors import LdmVideoError
from ldm_video.noise import NOISE_PRIORS
from ldm_video.train.objective import TIMESTEP_BIAS

CONFIG_NAME = "train_config.yaml"
MAX_TRAIN_FRAMES = 256  # longest training clip: longer videos are generated clip by clip (VidRD), not trained on


def _opt(help_text: str, choices: tuple | None = None, metavar: str | None = None) -> dict:
    return {"help": help_text, "choices": choices, "metavar": metavar}


@dataclass(frozen=True)
class RunSettings:
    """What every trainer shares (the engine's settings: optimiser, precision, checkpoints, output); each trainer's
    config extends it with its model and data, and may change a default by declaring the field again."""

    SECTIONS: ClassVar[dict[str, tuple[str, ...]]] = {}
    DEPRECATED: ClassVar[dict[str, str]] = {}

    num_workers: int = field(default=0, metadata=_opt("data-loading worker processes"))
    batch_size: int = field(default=1, metadata=_opt("clips per process per micro-batch"))
    grad_accum: int = field(default=1, metadata=_opt("micro-batches per optimiser step"))
    lr: float = field(default=1e-4, metadata=_opt("peak learning rate"))
    lr_scheduler: str = field(default="constant", metadata=_opt(
        "learning-rate schedule (diffusers get_scheduler)", ("constant", "linear", "cosine")))
    lr_warmup_steps: int = field(default=0, metadata=_opt("linear warm-up steps"))
    max_steps: int = field(default=1000, metadata=_opt("optimiser steps to train"))
    weight_decay: float = field(default=1e-2, metadata=_opt("AdamW weight decay"))
    max_grad_norm: float = field(default=1.0, metadata=_opt("gradient clipping norm (0 = off)"))
    mixed_precision: str = field(default="no", metadata=_opt(
        "precision of the frozen weights and autocast (trainable weights stay fp32; fp16 needs a CUDA GPU)",
        ("no", "fp16", "bf16")))
    gradient_checkpointing: bool = field(default=False, metadata=_opt(
        "recompute activations in the backward pass (less memory, ~30%% slower)"))
    nan_patience: int = field(default=5, metadata=_opt(
        "abort after this many NaN/inf steps in a row (each one is skipped with a warning)"))
    seed: int = field(default=0, metadata=_opt("seed of data order, crops, noise, timesteps and dropout"))
    output_dir: str = field(default="ldm-video-out", metadata=_opt(
        "run folder: the trained weights, checkpoints/, train_config.yaml, train_log.jsonl (and validation videos, logs)"))
    checkpoint_every: int = field(default=500, metadata=_opt("write a resumable checkpoint every N steps"))
    keep_checkpoints: int = field(default=3, metadata=_opt("keep the last N checkpoints"))
    resume: str | None = field(default=None, metadata=_opt(
        "'latest' (newest checkpoint in OUTPUT_DIR/checkpoints) or a checkpoint folder", metavar="latest|DIR"))
    overwrite: bool = field(default=False, metadata=_opt(
        "start afresh in an OUTPUT_DIR that holds another run: its checkpoints, weights, config and validation "
        "videos are deleted first (without it such a folder is refused unless --resume)"))

    def _check_run_settings(self) -> None:
        for name in ("batch_size", "grad_accum", "max_steps", "checkpoint_every", "keep_checkpoints", "nan_patience"):
            if getattr(self, name) < 1:
                raise LdmVideoError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("lr_warmup_steps", "num_workers", "max_grad_norm", "weight_decay"):
            if getattr(self, name) < 0:
                raise LdmVideoError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise LdmVideoError(f"--lr must be > 0, got {self.lr}")
        if self.overwrite and self.resume:
            raise LdmVideoError("--overwrite starts afresh and --resume continues: give one of them")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise LdmVideoError(f"--{f.name.replace('_', '-')} must be one of {', '.join(choices)}, "
                                    f"got {getattr(self, f.name)!r}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class TrainConfig(RunSettings):
    """Everything `ldm-video train` (and `plan`) needs; each field is the flag of the same name."""

    SECTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "model": ("base", "base_variant", "temporal_layers", "attention_heads", "attention_layers", "mid_block",
                  "max_frames", "conv_depth", "conv_dropout",
                  "lora_rank", "lora_alpha", "motion_norm", "init_motion", "vae"),
        "data": ("data", "cache", "cache_latents", "frames", "frame_stride", "fps", "resolution", "crop", "buckets",
                 "images", "image_share", "caption_dropout", "num_workers"),
        "output": ("output_dir", "checkpoint_every", "keep_checkpoints", "resume", "overwrite", "validate_every",
                   "validation_prompt", "validation_steps", "validation_guidance"),
    }  # the rest: "optimisation"

    # -- model ------------------------------------------------------------------------------------------
    base: str = field(default=DEFAULT_BASE, metadata=_opt(
        "SD 2.x base: hub id, local diffusers folder or one checkpoint file (.safetensors / .ckpt); never modified "
        "(with --cache: the base the cache was made with)"))
    base_variant: str | None = field(default=None, metadata=_opt(
        "which SD 2.x a single-file --base is: 2.1-base (epsilon, 512 px), 2.1-768-v (v-prediction, 768 px) or a "
        "diffusers folder of configs (default: from a .yaml beside the file, its header or name, else 2.1-base)",
        metavar="VARIANT"))
    temporal_layers: str = field(default="attn", metadata=_opt(
        "temporal layers to inject and train: attn (AnimateDiff motion modules; every export format takes them), "
        "conv (VidRD temporal convolutions; native format only) or attn+conv (export --format motion-adapter / "
        "animatediff keep only the attention). attn is the default by measurement: on the toy world attn+conv took "
        "41%% longer per step for +0.09 held-out motion, inside the +-0.15 spread of 8-clip scores (benchmarks/RESULTS.md, 2026-12-03)",
        ("attn", "conv", "attn+conv")))
    attention_heads: int = field(default=8, metadata=_opt("heads of each temporal attention"))
    attention_layers: int = field(default=1, metadata=_opt("transformer blocks per motion module (AnimateDiff: 1)"))
    mid_block: bool = field(default=True, metadata=_opt("temporal layers in the U-Net's mid block too"))
    max_frames: int = field(default=32, metadata=_opt(
        "clip length the temporal attention's frame positions cover (at least --frames; generation with longer "
        "clips needs it larger)"))
    conv_depth: int = field(default=4, metadata=_opt("layers per VidRD temporal-conv stack"))
    conv_dropout: float = field(default=0.1, metadata=_opt("dropout inside the temporal-conv stacks (VidRD: 0.1)"))
    lora_rank: int = field(default=0, metadata=_opt(
        "LoRA rank on the spatial attention projections, trained with the temporal layers (0 = off)"))
    lora_alpha: float = field(default=0.0, metadata=_opt(
        "LoRA alpha: the LoRA update is scaled by alpha / rank (0 = the rank, scale 1); exports keep it"))
    motion_norm: str = field(default="all-frames", metadata=_opt(
        "GroupNorm at the input of each motion module: over all frames (diffusers' AnimateDiff) or per frame "
        "(original AnimateDiff, A1111, ComfyUI-AnimateDiff-Evolved); train for the tool you will run the module in",
        ("all-frames", "per-frame")))
    init_motion: str | None = field(default=None, metadata=_opt(
        "start the temporal attention from a motion module: AnimateDiff .safetensors/.ckpt (e.g. mm_sd_v15_v2), a "
        "MotionAdapter folder or an ldm-video run; its heads, transformer layers and mid block are taken over",
        metavar="FILE|DIR"))
    vae: str | None = field(default=None, metadata=_opt(
        "video VAE folder from `ldm-video train-vae` (temporal-decoder or causal3d) to encode clips with; "
        "a causal3d VAE needs 4f+1 --frames and the U-Net trains on its f+1 latent frames (default: the base's VAE)"))
    # -- data -------------------------------------------------------------------------------------------
    data: str | None = field(default=None, metadata=_opt("folder of videos / images with captions, or one such file"))
    cache: str | None = field(default=None, metadata=_opt(
        "latent cache folder written by `ldm-video prepare` (used instead of --data)"))
    cache_latents: bool = field(default=False, metadata=_opt(
        "encode --data into OUTPUT_DIR/latent-cache first, then train from it without VAE / text encoder"))
    frames: int = field(default=16, metadata=_opt("frames per training clip"))
    frame_stride: int = field(default=1, metadata=_opt("take every n-th frame of a video"))
    fps: float | None = field(default=None, metadata=_opt("sample clips at this frame rate (overrides "
                                                          "--frame-stride)"))
    resolution: str = field(default="256", metadata=_opt("clip size: 256 or HxW like 256x448", metavar="RES"))
    crop: str = field(default="center", metadata=_opt("crop after resizing", ("center", "random")))
    buckets: bool = field(default=False, metadata=_opt(
        "aspect-ratio buckets: train each clip at the size (about the area of --resolution) nearest its aspect"))
    images: str = field(default="pseudo-video", metadata=_opt(
        "how images train: VidRD zoom/pan pseudo-videos, 1-frame samples, or not at all",
        ("pseudo-video", "frame", "off")))
    image_share: float | None = field(default=None, metadata=_opt(
        "fraction of batches drawn from images (default: their share of the folder)"))
    caption_dropout: float = field(default=0.1, metadata=_opt(
        "probability of training a sample with the empty caption (keeps classifier-free guidance working)"))
    # -- optimisation -----------------------------------------------------------------------------------
    optimizer: str = field(default="adamw", metadata=_opt(
        "adamw (torch) or adamw8bit (bitsandbytes; 8-bit states)", ("adamw", "adamw8bit")))
    noise_prior: str = field(default="mixed", metadata=_opt(
        "training noise prior (PYoCo): iid, mixed (eq. 3) or progressive (eq. 4)", tuple(NOISE_PRIORS)))
    noise_alpha: float = field(default=1.0, metadata=_opt(
        "prior strength alpha (PYoCo: 1 best for mixed, 2 for progressive)"))
    timestep_bias: str = field(default="none", metadata=_opt(
        "draw training timesteps more often from the noisiest (later) or least noisy (earlier) "
        "--timestep-bias-portion of the schedule (diffusers' timestep bias)", TIMESTEP_BIAS))
    timestep_bias_multiplier: float = field(default=1.0, metadata=_opt(
        "how much more often the biased timesteps are drawn"))
    timestep_bias_portion: float = field(default=0.25, metadata=_opt(
        "fraction of the schedule the bias applies to"))
    context_frames: int = field(default=0, metadata=_opt(
        "train the temporal layers to continue a video: in a --context-prob share of the clips the first N frames "
        "are given clean (timestep 0) and only the rest is denoised and scored; `generate --extend context` then "
        "starts each later clip from the previous clip's last N frames (latent frames with a causal 3D --vae; "
        "0 = off)", metavar="N"))
    context_causal: bool = field(default=False, metadata=_opt(
        "block-causal context: the --context-frames attend only to each other, never to the frames being denoised, "
        "so `generate --extend context` computes them once per clip and caches their keys and values instead of "
        "denoising them at every step (about half the work per new frame); needs --motion-norm per-frame and "
        "--temporal-layers attn"))
    context_prob: float = field(default=0.5, metadata=_opt(
        "share of the training clips that get --context-frames clean frames"))
    context_noise: int = field(default=0, metadata=_opt(
        "noise augmentation of the --context-frames: each clip's given frames are noised to a random timestep in "
        "[0, T] and told that timestep, so that the layers learn to continue imperfect frames (their own, in a long "
        "video; SVD / Diffusion Forcing); 0 = given clean", metavar="T"))
    attention_backend: str = field(default="sdpa", metadata=_opt("attention kernels", ("sdpa", "xformers")))
    ema: bool = field(default=False, metadata=_opt(
        "keep an exponential moving average of the trained weights; the output holds the EMA weights"))
    ema_decay: float = field(default=0.999, metadata=_opt("EMA decay"))
    # -- output -----------------------------------------------------------------------------------------
    validate_every: int = field(default=0, metadata=_opt(
        "every N steps (and at the end) sample the validation prompts to mp4 (0 = never)"))
    validation_prompt: tuple[str, ...] = field(default=(), metadata=_opt(
        "prompt for validation videos (repeat the flag for several)"))
    validation_steps: int = field(default=25, metadata=_opt("DDIM steps of validation sampling"))
    validation_guidance: float = field(default=7.5, metadata=_opt("classifier-free guidance of validation"))

    def video_unet_config(self, frames: int | None = None):
        """The temporal layers this run trains (`frames`: the U-Net's frames per clip, default --frames)."""
        from ldm_video.config import VideoUNetConfig

        return VideoUNetConfig(temporal_layers=self.temporal_layers, attention_heads=self.attention_heads,
                               attention_layers=self.attention_layers, mid_block=self.mid_block,
                               conv_depth=self.conv_depth, conv_dropout=self.conv_dropout,
                               max_frames=max(self.max_frames, frames or self.frames), motion_norm=self.motion_norm,
                               lora_rank=self.lora_rank, lora_alpha=self.lora_alpha,
                               context_causal=self.context_causal)

    def __post_init__(self) -> None:
        self._check_run_settings()
        positive = ("frames", "frame_stride", "attention_heads", "attention_layers", "max_frames", "conv_depth",
                    "validation_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise LdmVideoError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.frames > MAX_TRAIN_FRAMES:
            raise LdmVideoError(f"--frames {self.frames}: training clips are at most {MAX_TRAIN_FRAMES} frames (SD video "
                                "models train on 16-32); make long videos with `ldm-video generate --frames N`, which "
                                "samples them clip by clip")
        for name in ("lora_rank", "validate_every"):
            if getattr(self, name) < 0:
                raise LdmVideoError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if not (self.timestep_bias_multiplier > 0 and 0 < self.timestep_bias_portion <= 1):
            raise LdmVideoError("--timestep-bias-multiplier must be > 0 and --timestep-bias-portion in (0, 1], got "
                                f"{self.timestep_bias_multiplier} and {self.timestep_bias_portion}")
        if not self.noise_alpha >= 0:
            raise LdmVideoError(f"--noise-alpha must be >= 0, got {self.noise_alpha}")
        if self.cache and self.data:
            raise LdmVideoError("--cache and --data are alternatives: the cache already holds the encoded clips")
        if self.validate_every and not self.validation_prompt:
            raise LdmVideoError("--validate-every needs at least one --validation-prompt")
        if self.validation_prompt and not self.validate_every:
            raise LdmVideoError("--validation-prompt needs --validate-every N (how often to sample it)")
        if not self.lora_alpha >= 0:
            raise LdmVideoError(f"--lora-alpha must be >= 0, got {self.lora_alpha}")
        if self.lora_alpha and not self.lora_rank:
            raise LdmVideoError("--lora-alpha needs --lora-rank > 0 (there is no LoRA to scale)")
        if self.init_motion and self.temporal_layers == "conv":
            raise LdmVideoError("--init-motion loads temporal attention; --temporal-layers conv has none "
                                "(use attn or attn+conv)")
        if not 0.0 <= self.conv_dropout < 1.0:
            raise LdmVideoError(f"--conv-dropout must be in [0, 1), got {self.conv_dropout}")
        if not 0 <= self.context_frames < self.frames:
            raise LdmVideoError(f"--context-frames must be in [0, --frames), got {self.context_frames} with --frames "
                                f"{self.frames} (some frames must be left to denoise)")
        if self.context_causal and not self.context_frames:
            raise LdmVideoError("--context-causal needs --context-frames N > 0 (there are no given frames to keep "
                                "causal)")
        if self.context_causal and (self.temporal_layers != "attn" or self.motion_norm != "per-frame"):
            raise LdmVideoError("--context-causal needs --temporal-layers attn and --motion-norm per-frame (temporal "
                                "convolutions and an all-frames GroupNorm mix the given frames with the others), got "
                                f"{self.temporal_layers} and {self.motion_norm}")
        if not 0.0 < self.context_prob <= 1.0:
            raise LdmVideoError(f"--context-prob must be in (0, 1], got {self.context_prob}")
        if self.context_noise and not self.context_frames:
            raise LdmVideoError(f"--context-noise {self.context_noise} needs --context-frames N > 0 (there are no "
                                "context frames to noise)")
        if self.context_noise < 0:
            raise LdmVideoError(f"--context-noise must be >= 0, got {self.context_noise}")
        if self.context_prob != 0.5 and not self.context_frames:
            raise LdmVideoError(f"--context-prob {self.context_prob} needs --context-frames N > 0 (there are no "
                                "context frames to give)")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise LdmVideoError(f"--caption-dropout must be in [0, 1], got {self.caption_dropout}")
        if not 0.0 < self.ema_decay < 1.0:
            raise LdmVideoError(f"--ema-decay must be in (0, 1), got {self.ema_decay}")


def _base_type(cls: type, name: str) -> type:
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return tuple
    return args[0] if args else hint


def _coerce(cls: type, name: str, value: object, source: str) -> object:
    """A YAML / flag value as the field's type; LdmVideoError naming the source otherwise."""
    kind = _base_type(cls, name)
    if value is None:
        return None
    try:
        if kind is tuple:
            return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else (str(value),)
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1", "on"):
                return True
            if str(value).lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise LdmVideoError(f"{source}: {name} must be a {kind.__name__}, got {value!r}") from None


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type | None = None,
                         only: tuple[str, ...] | None = None) -> None:
    """One flag per field of `cls` (default TrainConfig; default shown, value only set when given), the old
    spellings in `cls.DEPRECATED` (hidden), plus --config. `only`: just these fields' flags (a command that uses
    part of the config, e.g. `data preview`)."""
    cls = cls or TrainConfig
    parser.add_argument("--config", metavar="FILE.yaml", default=argparse.SUPPRESS,
                        help="read settings from a YAML file (keys are the flag names, e.g. a run's "
                             f"{CONFIG_NAME}) or a shipped preset ({', '.join(preset_names())}); flags given win")
    defaults = cls()
    groups: dict[str, argparse._ArgumentGroup] = {}
    section_of = {name: section for section, names in cls.SECTIONS.items() for name in names}
    specs: dict[str, dict] = {}
    for f in dataclasses.fields(cls):
        if only is not None and f.name not in only:
            continue
        kind = _base_type(cls, f.name)
        meta = f.metadata
        default = getattr(defaults, f.name)
        # a default that depends on other settings is resolved in __post_init__ and explained in the help
        shown = "" if default in (None, ()) or f.default is None else f" (default: {default})"
        kwargs: dict = {"dest": f.name, "default": argparse.SUPPRESS, "help": meta["help"] + shown}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind is tuple:
            kwargs.update(action="append", metavar="TEXT")
        else:
            kwargs.update(type=kind, choices=meta.get("choices"), metavar=meta.get("metavar"))
            if f.name == "resume":  # a bare --resume means the newest checkpoint
                kwargs.update(nargs="?", const="latest")
        section = section_of.get(f.name, "optimisation")
        if section not in groups:
            groups[section] = parser.add_argument_group(section)
        groups[section].add_argument(flag_name(f.name), **kwargs)
        specs[f.name] = kwargs
    from ldm_video.flags import add_deprecated

    for old, name in cls.DEPRECATED.items():
        if name not in specs:
            continue
        spec = {k: v for k, v in specs[name].items() if k in ("type", "choices", "metavar", "nargs", "const")}
        add_deprecated(parser, old, flag_name(name), name, switch=specs[name].get("action") is
                       argparse.BooleanOptionalAction, default=argparse.SUPPRESS, **spec)


PRESETS_DIR = Path(__file__).with_name("presets")


def preset_names() -> list[str]:
    """The training presets shipped with the package (train/presets/*.yaml)."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def config_path(value: str | os.PathLike) -> Path:
    """A --config value as a file: an existing path, else the shipped preset of that name."""
    path = Path(value)
    if path.is_file() or path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        return path
    preset = PRESETS_DIR / f"{value}.yaml"
    if preset.is_file():
        return preset
    raise LdmVideoError(f"{value}: no such config file or preset (presets: {', '.join(preset_names())})")


def load_yaml(path: str | os.PathLike, cls: type | None = None) -> dict:
    """A config YAML (or preset name) as {field: value} of `cls` (default TrainConfig); unknown keys and bad
    values are LdmVideoError."""
    cls = cls or TrainConfig
    path = config_path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise LdmVideoError(f"{path}: cannot read config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise LdmVideoError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise LdmVideoError(f"{path}: a config must be a mapping of flag names to values")
    known = {f.name for f in dataclasses.fields(cls)}
    out = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise LdmVideoError(f"{path}: unknown setting {key!r}")
        out[name] = _coerce(cls, name, value, str(path))
    return out


def resolve_config(args: argparse.Namespace, cls: type | None = None):
    """Defaults, then --config FILE.yaml, then the flags given on the command line: a `cls` (TrainConfig)."""
    cls = cls or TrainConfig
    values: dict = {}
    if getattr(args, "config", None):
        values.update(load_yaml(args.config, cls))
    known = {f.name for f in dataclasses.fields(cls)}
    for name, value in vars(args).items():
        if name in known:
            values[name] = _coerce(cls, name, value, flag_name(name))
    return cls(**values)


def save_config(config, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (atomically); `--config` reads it back to the same config."""
    from ldm_video.files import atomic_write

    path = Path(path)
    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    atomic_write(path, lambda p: p.write_text(text))
    return path


def config_from_dict(data: dict, source: str = "config", cls: type | None = None):
    """A config (default TrainConfig) from a saved dict (e.g. a checkpoint's), with the same checks as a YAML
    file."""
    cls = cls or TrainConfig
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: _coerce(cls, k, v, source) for k, v in data.items() if k in known})
