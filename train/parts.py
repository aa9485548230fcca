"""The config parts several commands share (`ldm_video.train.settings` turns them into flags): the base model
(train, train-vae, prepare, plan), the clips (train, train-vae, prepare, data preview) and the engine's run
settings (train, train-vae).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ldm_video.base import DEFAULT_BASE
from ldm_video.errors import LdmVideoError
from ldm_video.train.settings import check_at_least, check_choices, opt

MAX_TRAIN_FRAMES = 256  # longest training clip: longer videos are generated clip by clip (VidRD), not trained on
IMAGE_MODES = ("pseudo-video", "frame", "off")


@dataclass(frozen=True)
class BaseModel:
    """Which SD 2.x the command works on."""

    TITLE: ClassVar[str] = "base model"

    base: str = field(default=DEFAULT_BASE, metadata=opt(
        "SD 2.x base: hub id, local diffusers folder or one checkpoint file (.safetensors / .ckpt); never modified "
        "(train with --cache: the base the cache was made with)"))
    base_variant: str | None = field(default=None, metadata=opt(
        "which SD 2.x a single-file --base is: 2.1-base (epsilon, 512 px), 2.1-768-v (v-prediction, 768 px) or a "
        "diffusers folder of configs (default: from a .yaml beside the file, its header or name, else 2.1-base; "
        "both share one VAE and text encoder)", metavar="VARIANT"))


@dataclass(frozen=True)
class Clips:
    """Which clips are cut from a media folder: the data flags every command that reads videos shares."""

    TITLE: ClassVar[str] = "data"

    data: str | None = field(default=None, metadata=opt(
        "folder of videos / images (with captions, for train), or one such file"))
    frames: int = field(default=16, metadata=opt("frames per clip"))
    frame_stride: int = field(default=1, metadata=opt("take every n-th frame of a video"))
    fps: float | None = field(default=None, metadata=opt("sample clips at this frame rate (overrides "
                                                         "--frame-stride)"))
    resolution: str = field(default="256", metadata=opt("clip size: 256 or HxW like 256x448", metavar="RES"))
    images: str = field(default="pseudo-video", metadata=opt(
        "how images are used: VidRD zoom/pan pseudo-videos, 1-frame samples, or not at all", IMAGE_MODES))

    def __post_init__(self) -> None:
        check_at_least(self, ("frames", "frame_stride"), 1)
        if self.frames > MAX_TRAIN_FRAMES:
            raise LdmVideoError(f"--frames {self.frames}: training clips are at most {MAX_TRAIN_FRAMES} frames (SD "
                                "video models train on 16-32); make long videos with `ldm-video generate --frames N`, "
                                "which samples them clip by clip")
        check_choices(self)


@dataclass(frozen=True)
class ClipData(Clips):
    """The clips and how each is framed: the data part of train, prepare and data preview (train-vae always crops
    at random and has no buckets)."""

    crop: str = field(default="center", metadata=opt("crop after resizing", ("center", "random")))
    buckets: bool = field(default=False, metadata=opt(
        "aspect-ratio buckets: each clip at the size (about the area of --resolution) nearest its aspect, instead of "
        "a crop to --resolution"))

    def data_config(self, image_share: float | None = None):
        """The sampling of these clips (`ldm_video.train.data.DataConfig`); --data is required."""
        from ldm_video.train.data import DataConfig
        from ldm_video.train.transforms import parse_resolution

        if not self.data:
            raise LdmVideoError("no training data: give --data FOLDER (or --cache CACHE_DIR from `ldm-video prepare`)")
        return DataConfig(root=self.data, num_frames=self.frames, frame_stride=self.frame_stride, fps=self.fps,
                          resolution=parse_resolution(self.resolution), crop=self.crop, images=self.images,
                          image_share=image_share, buckets=self.buckets)


@dataclass(frozen=True)
class RunSettings:
    """The engine's settings, shared by every trainer: optimisation, precision, checkpoints and the run folder."""

    TITLE: ClassVar[str] = "optimisation and run"

    num_workers: int = field(default=0, metadata=opt("data-loading worker processes"))
    batch_size: int = field(default=1, metadata=opt("clips per process per micro-batch"))
    grad_accum: int = field(default=1, metadata=opt("micro-batches per optimiser step"))
    lr: float = field(default=1e-4, metadata=opt("peak learning rate"))
    lr_scheduler: str = field(default="constant", metadata=opt(
        "learning-rate schedule (diffusers get_scheduler)", ("constant", "linear", "cosine")))
    lr_warmup_steps: int = field(default=0, metadata=opt("linear warm-up steps"))
    max_steps: int = field(default=1000, metadata=opt("optimiser steps to train"))
    weight_decay: float = field(default=1e-2, metadata=opt("AdamW weight decay"))
    max_grad_norm: float = field(default=1.0, metadata=opt("gradient clipping norm (0 = off)"))
    mixed_precision: str = field(default="no", metadata=opt(
        "precision of the frozen weights and autocast (trainable weights stay fp32; fp16 needs a CUDA GPU)",
        ("no", "fp16", "bf16")))
    gradient_checkpointing: bool = field(default=False, metadata=opt(
        "recompute activations in the backward pass (less memory, ~30%% slower)"))
    nan_patience: int = field(default=5, metadata=opt(
        "abort after this many NaN/inf steps in a row (each one is skipped with a warning)"))
    seed: int = field(default=0, metadata=opt("seed of data order, crops, noise, timesteps and dropout"))
    output_dir: str = field(default="ldm-video-out", metadata=opt(
        "run folder: the trained weights, checkpoints/, train_config.yaml, train_log.jsonl (and validation videos, logs)"))
    checkpoint_every: int = field(default=500, metadata=opt("write a resumable checkpoint every N steps"))
    keep_checkpoints: int = field(default=3, metadata=opt("keep the last N checkpoints"))
    resume: str | None = field(default=None, metadata=opt(
        "'latest' (newest checkpoint in OUTPUT_DIR/checkpoints) or a checkpoint folder", metavar="latest|DIR",
        const="latest"))
    overwrite: bool = field(default=False, metadata=opt(
        "start afresh in an OUTPUT_DIR that holds another run: its checkpoints, weights, config and validation "
        "videos are deleted first (without it such a folder is refused unless --resume)"))

    def __post_init__(self) -> None:
        check_at_least(self, ("batch_size", "grad_accum", "max_steps", "checkpoint_every", "keep_checkpoints",
                              "nan_patience"), 1)
        check_at_least(self, ("lr_warmup_steps", "num_workers", "max_grad_norm", "weight_decay"), 0)
        if not self.lr > 0:
            raise LdmVideoError(f"--lr must be > 0, got {self.lr}")
        if self.overwrite and self.resume:
            raise LdmVideoError("--overwrite starts afresh and --resume continues: give one of them")
        check_choices(self)
