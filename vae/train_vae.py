"""`ldm-video train-vae`: fine-tune a temporal-aware decoder (VidRD) or a 3D causal VAE on video clips.

temporal-decoder: the frozen SD encoder gives posterior samples; the temporal-conv stacks (or, with
`--train-decoder`, the whole decoder too) learn to reconstruct the clip, decoded with its true num_frames.
causal3d: the decoder of the inflated model trains on reconstruction, its encoder kept as inflated so the
latents stay what the image U-Net reads (`--no-freeze-encoder`: the whole model, + a small KL term, LDM's
kl_weight 1e-6).
Loss: L1 + temporal loss (frame differences, SPEC §5) [+ LPIPS when the lpips package and its weights are
local] [+ KL]. The loop is `ldm_video.train.engine`, the one `ldm-video train` runs: accelerate's devices,
precision, accumulate() and data parallelism; checkpoints under OUTPUT_DIR/checkpoints/step-N (their `vae/`
is a loadable video VAE), `--resume latest` at the exact data position, Ctrl-C -> checkpoint -> exit 130, NaN
steps skipped; the final model goes to OUTPUT_DIR/vae (`generate --vae OUTPUT_DIR` reads it). Settings are
the flags below, `--config FILE.yaml` or a run's train_config.yaml.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch

from ldm_video.base import DEFAULT_BASE
from ldm_video.errors import LdmVideoError
from ldm_video.train.config import RunSettings, _opt
from ldm_video.train.engine import Job
from ldm_video.vae.causal3d import CausalVAE
from ldm_video.vae.interface import VideoVAE
from ldm_video.vae.losses import LPIPSLoss, kl_per_pixel, l1_loss, temporal_loss
from ldm_video.vae.temporal_decoder import TemporalDecoderVAE, load_base_vae

TRAIN_KINDS = ("temporal-decoder", "causal3d")
# what a train-vae run writes into OUTPUT_DIR
RUN_FILES = ("checkpoints", "vae", "train_config.yaml", "train_log.jsonl")
# settings a checkpoint cannot be resumed under with other values
# a fresh causal VAE is the 2D VAE inflated: larger steps pull it (and its latents) away from that start
# (toy world, 1000 steps, whole VAE: 1e-4 28.2 dB, 3e-4 25.0 dB, 3e-5 29.9 dB; encoder frozen, 3e-5: 30.1 dB;
# untrained 29.0 dB, 2D VAE 31.2 dB: benchmarks/RESULTS.md)
DEFAULT_LR = {"temporal-decoder": 1e-4, "causal3d": 3e-5}
_UNRECORDED = {"freeze_encoder": False}  # what a checkpoint from before a setting existed did
_RESUME_MUST_MATCH = ("kind", "train_decoder", "freeze_encoder", "frames", "batch_size", "grad_accum", "seed")


@dataclass(frozen=True)
class TrainVAEConfig(RunSettings):
    """One train-vae run; each field is the flag of the same name (the grammar of `ldm-video train`)."""

    SECTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "model": ("kind", "base", "base_variant", "train_decoder", "freeze_encoder"),
        "data": ("data", "frames", "resolution", "frame_stride", "fps", "images", "num_workers"),
        "output": ("output_dir", "checkpoint_every", "keep_checkpoints", "resume", "overwrite"),
    }
    DEPRECATED: ClassVar[dict[str, str]] = {"--output": "output_dir", "--steps": "max_steps",
                                            "--gradient-accumulation": "grad_accum"}

    # -- model --
    kind: str = field(default="temporal-decoder", metadata=_opt(
        "temporal-decoder: SD VAE + temporal convs in the decoder; causal3d: SD VAE inflated to a causal 3D VAE "
        "with 4x temporal compression", TRAIN_KINDS))
    base: str = field(default=DEFAULT_BASE, metadata=_opt(
        "SD 2.x base whose VAE is extended: diffusers folder, hub id or single .safetensors / .ckpt file"))
    base_variant: str | None = field(default=None, metadata=_opt(
        "which SD 2.x a single-file --base is (2.1-base or 2.1-768-v; they share one VAE)", metavar="VARIANT"))
    train_decoder: bool = field(default=False, metadata=_opt(
        "temporal-decoder only: fine-tune the whole decoder, not just its temporal layers"))
    freeze_encoder: bool | None = field(default=None, metadata=_opt(
        "causal3d: keep the inflated encoder as it is and train the decoder, so the latents stay the ones the "
        "frozen image U-Net reads (no KL term then); on by default for causal3d (measured better: "
        "benchmarks/RESULTS.md), --no-freeze-encoder trains the whole VAE"))
    # -- data --
    data: str | None = field(default=None, metadata=_opt("folder of videos / images (captions are not needed)"))
    frames: int = field(default=9, metadata=_opt("frames per clip (causal3d needs 4f+1: 5, 9, 17, ...)"))
    resolution: str = field(default="256", metadata=_opt("clip size: N or HxW (multiples of 8)", metavar="RES"))
    frame_stride: int = field(default=1, metadata=_opt("take every n-th frame of a file"))
    fps: float | None = field(default=None, metadata=_opt("sample clips at this frame rate instead of a stride"))
    images: str = field(default="pseudo-video", metadata=_opt(
        "how still images are used: zoom/pan pseudo-videos, single frames, or not at all",
        ("pseudo-video", "frame", "off")))
    # -- optimisation --
    temporal_weight: float = field(default=1.0, metadata=_opt("weight of the frame-difference loss"))
    lpips_weight: float = field(default=0.0, metadata=_opt(
        "weight of LPIPS (needs the lpips package and local AlexNet weights; 0 = off)"))
    kl_weight: float | None = field(default=None, metadata=_opt("causal3d only: KL weight (default 1e-6)"))
    # -- the engine's settings (RunSettings), with this trainer's defaults --
    lr: float | None = field(default=None, metadata=_opt(
        "peak learning rate (default: 1e-4 for temporal-decoder, 3e-5 for causal3d, the rates that measured best "
        "on the toy world: benchmarks/RESULTS.md)"))
    weight_decay: float = field(default=0.0, metadata=_opt("AdamW weight decay"))
    output_dir: str = field(default="ldm-video-vae", metadata=_opt(
        "run folder: vae/ (the trained VAE), checkpoints/, train_config.yaml, train_log.jsonl"))
    keep_checkpoints: int = field(default=2, metadata=_opt("keep the last N checkpoints"))

    def __post_init__(self) -> None:
        if self.freeze_encoder and self.kind != "causal3d":
            raise LdmVideoError("--freeze-encoder applies to --kind causal3d only (the temporal decoder never trains "
                                "the encoder)")
        # the kind's defaults; a saved train_config.yaml records what was used
        if self.lr is None:
            object.__setattr__(self, "lr", DEFAULT_LR.get(self.kind, DEFAULT_LR["temporal-decoder"]))
        if self.freeze_encoder is None:
            object.__setattr__(self, "freeze_encoder", self.kind == "causal3d")
        self._check_run_settings()
        for name in ("frames", "frame_stride"):
            if getattr(self, name) < 1:
                raise LdmVideoError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("temporal_weight", "lpips_weight"):
            if getattr(self, name) < 0:
                raise LdmVideoError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        from ldm_video.train.config import MAX_TRAIN_FRAMES

        if self.frames > MAX_TRAIN_FRAMES:
            raise LdmVideoError(f"--frames {self.frames}: training clips are at most {MAX_TRAIN_FRAMES} frames")
        if self.kl_weight is not None and self.kind != "causal3d":
            raise LdmVideoError("--kl-weight applies to --kind causal3d only")
        if self.train_decoder and self.kind != "temporal-decoder":
            raise LdmVideoError("--train-decoder applies to --kind temporal-decoder only (causal3d trains its decoder "
                                "always, and its encoder unless --freeze-encoder)")
        if self.freeze_encoder and self.kl_weight is not None:
            raise LdmVideoError("--kl-weight trains the encoder, which causal3d keeps frozen by default: add "
                                "--no-freeze-encoder")

    @property
    def kl(self) -> float:
        return 1e-6 if self.kl_weight is None else self.kl_weight

    def data_config(self):
        """The clip sampling of this run (random crops)."""
        from ldm_video.train.data import DataConfig

        if not self.data:
            raise LdmVideoError("--data is required: a folder of videos / images")
        data = DataConfig(root=self.data, num_frames=self.frames, frame_stride=self.frame_stride, fps=self.fps,
                          resolution=self.resolution, crop="random", images=self.images)
        if any(s % 8 for s in data.resolution):
            raise LdmVideoError(f"--resolution {self.resolution}: height and width must be multiples of 8")
        return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ldm_video.train.config import add_config_arguments

    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser, TrainVAEConfig)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    from ldm_video.flags import add_threads

    add_threads(parser)


def build_model(cfg: TrainVAEConfig) -> VideoVAE:
    """A fresh model from the base's VAE, trainable parameters set (a resume then loads its weights)."""
    base_vae = load_base_vae(cfg.base, variant=cfg.base_variant)
    if cfg.kind == "temporal-decoder":
        model: VideoVAE = TemporalDecoderVAE(base_vae, base=cfg.base)
        model.set_trainable(cfg.train_decoder)
    else:
        model = CausalVAE(base_vae, base=cfg.base)
        model.requires_grad_(True)
        if cfg.freeze_encoder:
            model.encoder.requires_grad_(False)
    return model.train()


def loss_terms(model, video: torch.Tensor, cfg: TrainVAEConfig, generator: torch.Generator,
               lpips: LPIPSLoss | None) -> dict[str, torch.Tensor]:
    """Every loss term of one micro-batch, and their weighted sum under "loss"."""
    recon, dist = model(video, sample=True, generator=generator)  # (b, 3, F, H, W), posterior
    recon = recon.float()
    terms = {"l1": l1_loss(recon, video), "temporal": temporal_loss(recon, video)}
    loss = terms["l1"] + cfg.temporal_weight * terms["temporal"]
    if lpips is not None:
        terms["lpips"] = lpips(recon, video)
        loss = loss + cfg.lpips_weight * terms["lpips"]
    if cfg.kind == "causal3d" and not cfg.freeze_encoder:
        terms["kl"] = kl_per_pixel(dist.mean.float(), dist.logvar.float(), video[0].numel())
        loss = loss + cfg.kl * terms["kl"]
    terms["loss"] = loss
    return terms


class VAEJob(Job):
    """A video VAE as an engine job (`ldm_video.train.engine.Job`): the model and its reconstruction loss."""

    model_part = "vae"  # checkpoint subfolder: a loadable video-VAE folder

    def __init__(self, cfg: TrainVAEConfig, accelerator, model, optimizer, lr_scheduler, sampler, loader,
                 lpips: LPIPSLoss | None) -> None:
        self.cfg, self.accelerator, self.model, self.optimizer = cfg, accelerator, model, optimizer
        self.lr_scheduler, self.sampler, self.loader, self.lpips = lr_scheduler, sampler, loader, lpips
        self.params = [p for p in accelerator.unwrap_model(model).parameters() if p.requires_grad]

    def loss(self, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        video = batch["pixel_values"].to(self.accelerator.device)  # (b, 3, F, H, W) in [-1, 1]
        with self.accelerator.autocast():
            return loss_terms(self.model, video, self.cfg, generator, self.lpips)

    def trainable_parameters(self) -> list[torch.Tensor]:
        return self.params

    def save_model(self, folder: Path, step: int, final: bool) -> None:
        model = self.accelerator.unwrap_model(self.model)
        target = folder / "vae" if final else folder
        model.save(target, metadata={"step": step, "config": self.cfg.to_dict()})
        if final:
            self.accelerator.print(f"train-vae: saved {self.cfg.kind} VAE after {step} steps to {target} "
                                   f"(use it with --vae {folder})")

    def load_model(self, folder: Path) -> None:
        from ldm_video.vae.checkpoint import load_state_strict, read_config, read_weights

        kind = read_config(folder).get("kind")
        if kind != self.cfg.kind:
            raise LdmVideoError(f"{folder}: holds a {kind!r} VAE, this run trains --kind {self.cfg.kind}")
        load_state_strict(self.accelerator.unwrap_model(self.model), read_weights(folder), str(folder))

    def check_resume(self, state: dict, path: Path) -> None:
        recorded = state.get("config", {})
        saved = {k: recorded.get(k, _UNRECORDED.get(k)) for k in _RESUME_MUST_MATCH}
        changed = [k for k in _RESUME_MUST_MATCH if saved[k] != getattr(self.cfg, k)]
        if changed:
            raise LdmVideoError(f"{path}: cannot resume with different " + ", ".join(
                f"--{k.replace('_', '-')} ({saved[k]} in the checkpoint, {getattr(self.cfg, k)} now)"
                for k in changed))

    def config_dict(self) -> dict:
        return self.cfg.to_dict()

    def on_start(self) -> None:
        from ldm_video.train.config import CONFIG_NAME, save_config

        save_config(self.cfg, Path(self.cfg.output_dir) / CONFIG_NAME)


def train(cfg: TrainVAEConfig, progress: bool = True):
    """Run (or resume, with cfg.resume) a train-vae run; returns the engine's TrainResult."""
    from accelerate.utils import set_seed

    from ldm_video.train.data import ClipBatchSampler, VideoFolderDataset, image_flags, make_dataloader
    from ldm_video.train.engine import (
        LoopSettings,
        build_accelerator,
        check_mixed_precision,
        run_loop,
        start_trackers,
    )
    from ldm_video.train.optim import build_lr_scheduler
    from ldm_video.train.state import check_output_dir, launcher_main_process, resume_point

    data_cfg = cfg.data_config()
    check_mixed_precision(cfg.mixed_precision)
    from ldm_video.base import check_base
    from ldm_video.single_file import is_single_file

    if is_single_file(cfg.base) or (Path(cfg.base) / "model_index.json").exists() or not Path(cfg.base).exists():
        check_base(cfg.base, cfg.base_variant)  # a missing or unreachable base is said before the run folder is made
    overwritten = check_output_dir(cfg.output_dir, cfg.resume, cfg.overwrite, run_files=RUN_FILES)
    resume_from = resume_point(cfg.resume, cfg.output_dir, main_process=launcher_main_process())
    accelerator = build_accelerator(cfg)  # as train's: TensorBoard under OUTPUT_DIR/logs when installed
    set_seed(cfg.seed)  # the temporal stacks' initialisation (all but their zeroed last conv), the same everywhere
    model = build_model(cfg)
    if cfg.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    model.check_num_frames(data_cfg.num_frames, what="--frames")
    lpips = LPIPSLoss().to(accelerator.device) if cfg.lpips_weight > 0 else None
    dataset = VideoFolderDataset(data_cfg)
    sampler = ClipBatchSampler(image_flags(dataset), cfg.batch_size, seed=cfg.seed,
                               num_replicas=accelerator.num_processes, rank=accelerator.process_index)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    lr_scheduler = build_lr_scheduler(optimizer, cfg.lr_scheduler, cfg.lr_warmup_steps, cfg.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    set_seed(cfg.seed + accelerator.process_index)  # each process its own dropout stream
    start_trackers(accelerator, "ldm-video-train-vae", cfg.to_dict())
    job = VAEJob(cfg, accelerator, model, optimizer, lr_scheduler, sampler,
                 make_dataloader(dataset, sampler, cfg.num_workers), lpips)
    settings = LoopSettings(output_dir=cfg.output_dir, max_steps=cfg.max_steps, seed=cfg.seed,
                            checkpoint_every=cfg.checkpoint_every, keep_checkpoints=cfg.keep_checkpoints,
                            max_grad_norm=cfg.max_grad_norm, nan_patience=cfg.nan_patience,
                            mixed_precision=cfg.mixed_precision, progress=progress, desc=f"train-vae {cfg.kind}",
                            clear_first=overwritten)
    return run_loop(job, settings, resume_from)


def run(args: argparse.Namespace) -> int:
    from ldm_video.train.config import resolve_config

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("accelerate", "diffusers", "transformers", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from ldm_video.flags import set_threads

    set_threads(args.threads)
    cfg = resolve_config(args, TrainVAEConfig)
    if args.no_progress:
        from ldm_video.flags import hide_library_progress

        hide_library_progress()
    result = train(cfg, progress=not args.no_progress)
    if result.interrupted:
        if result.main_process:
            print(f"interrupted at step {result.step}; checkpoint written to {result.checkpoint}; "
                  "continue with --resume latest", file=sys.stderr)
        return 130
    return 0
