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

from ldm_video.errors import LdmVideoError
from ldm_video.train.engine import Job
from ldm_video.train.parts import BaseModel, Clips, RunSettings
from ldm_video.train.settings import ConfigTree, add_config_arguments, check_choices, opt
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
class VAEModel:
    """Which video VAE train-vae trains, which of its weights, and the weights of its loss terms."""

    TITLE: ClassVar[str] = "video VAE"

    kind: str = field(default="temporal-decoder", metadata=opt(
        "temporal-decoder: SD VAE + temporal convs in the decoder; causal3d: SD VAE inflated to a causal 3D VAE "
        "with 4x temporal compression", TRAIN_KINDS))
    train_decoder: bool = field(default=False, metadata=opt(
        "temporal-decoder only: fine-tune the whole decoder, not just its temporal layers"))
    freeze_encoder: bool = field(default=False, metadata=opt(
        "causal3d: keep the inflated encoder as it is and train the decoder, so the latents stay the ones the "
        "frozen image U-Net reads (no KL term then); on by default for causal3d (measured better: "
        "benchmarks/RESULTS.md), --no-freeze-encoder trains the whole VAE"))
    temporal_weight: float = field(default=1.0, metadata=opt("weight of the frame-difference loss"))
    lpips_weight: float = field(default=0.0, metadata=opt(
        "weight of LPIPS (needs the lpips package and local AlexNet weights; 0 = off)"))
    kl_weight: float | None = field(default=None, metadata=opt("causal3d only: KL weight (default 1e-6)"))

    def __post_init__(self) -> None:
        check_choices(self)
        if self.freeze_encoder and self.kind != "causal3d":
            raise LdmVideoError("--freeze-encoder applies to --kind causal3d only (the temporal decoder never trains "
                                "the encoder)")
        for name in ("temporal_weight", "lpips_weight"):
            if getattr(self, name) < 0:
                raise LdmVideoError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
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


@dataclass(frozen=True)
class TrainVAEConfig(ConfigTree):
    """One train-vae run: the base whose VAE is extended, the video VAE, the clips (train's data flags, always
    cropped at random) and the engine's settings with this trainer's defaults; each field is the flag of the same
    name (the grammar of `ldm-video train`). Build it with `from_flat`, which fills the kind's defaults."""

    DEPRECATED: ClassVar[dict[str, str]] = {"--output": "output_dir", "--steps": "max_steps",
                                            "--gradient-accumulation": "grad_accum"}
    DERIVED: ClassVar[tuple[str, ...]] = ("lr", "freeze_encoder")
    HELP: ClassVar[dict[str, str]] = {
        "base": "SD 2.x base whose VAE is extended: diffusers folder, hub id or single .safetensors / .ckpt file",
        "base_variant": "which SD 2.x a single-file --base is (2.1-base or 2.1-768-v; they share one VAE)",
        "data": "folder of videos / images (captions are not needed)",
        "frames": "frames per clip (causal3d needs 4f+1: 5, 9, 17, ...)",
        "resolution": "clip size: N or HxW (multiples of 8)",
        "lr": "peak learning rate (default: 1e-4 for temporal-decoder, 3e-5 for causal3d, the rates that measured "
              "best on the toy world: benchmarks/RESULTS.md)",
        "output_dir": "run folder: vae/ (the trained VAE), checkpoints/, train_config.yaml, train_log.jsonl",
    }

    model: BaseModel = field(default_factory=BaseModel)
    vae: VAEModel = field(default_factory=VAEModel)
    data: Clips = field(default_factory=lambda: Clips(frames=9))
    run: RunSettings = field(default_factory=lambda: RunSettings(weight_decay=0.0, output_dir="ldm-video-vae",
                                                                 keep_checkpoints=2))

    @classmethod
    def resolve(cls, values: dict) -> dict:
        """The kind's defaults, filled before construction (a saved train_config.yaml records what was used)."""
        kind = values.get("kind", VAEModel.kind)
        values = dict(values)
        if values.get("lr") is None:
            values["lr"] = DEFAULT_LR.get(kind, DEFAULT_LR["temporal-decoder"])
        if values.get("freeze_encoder") is None:
            values["freeze_encoder"] = kind == "causal3d"
        return values

    def data_config(self):
        """The clip sampling of this run (random crops)."""
        from ldm_video.train.data import DataConfig

        if not self.data.data:
            raise LdmVideoError("--data is required: a folder of videos / images")
        clips = self.data
        data = DataConfig(root=clips.data, num_frames=clips.frames, frame_stride=clips.frame_stride, fps=clips.fps,
                          resolution=clips.resolution, crop="random", images=clips.images)
        if any(s % 8 for s in data.resolution):
            raise LdmVideoError(f"--resolution {clips.resolution}: height and width must be multiples of 8")
        return data


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser, TrainVAEConfig)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    from ldm_video.flags import add_threads

    add_threads(parser)


def build_model(cfg: TrainVAEConfig) -> VideoVAE:
    """A fresh model from the base's VAE, trainable parameters set (a resume then loads its weights)."""
    base_vae = load_base_vae(cfg.model.base, variant=cfg.model.base_variant)
    if cfg.vae.kind == "temporal-decoder":
        model: VideoVAE = TemporalDecoderVAE(base_vae, base=cfg.model.base)
        model.set_trainable(cfg.vae.train_decoder)
    else:
        model = CausalVAE(base_vae, base=cfg.model.base)
        model.requires_grad_(True)
        if cfg.vae.freeze_encoder:
            model.encoder.requires_grad_(False)
    return model.train()


def loss_terms(model, video: torch.Tensor, cfg: TrainVAEConfig, generator: torch.Generator,
               lpips: LPIPSLoss | None) -> dict[str, torch.Tensor]:
    """Every loss term of one micro-batch, and their weighted sum under "loss"."""
    recon, dist = model(video, sample=True, generator=generator)  # (b, 3, F, H, W), posterior
    recon = recon.float()
    terms = {"l1": l1_loss(recon, video), "temporal": temporal_loss(recon, video)}
    loss = terms["l1"] + cfg.vae.temporal_weight * terms["temporal"]
    if lpips is not None:
        terms["lpips"] = lpips(recon, video)
        loss = loss + cfg.vae.lpips_weight * terms["lpips"]
    if cfg.vae.kind == "causal3d" and not cfg.vae.freeze_encoder:
        terms["kl"] = kl_per_pixel(dist.mean.float(), dist.logvar.float(), video[0].numel())
        loss = loss + cfg.vae.kl * terms["kl"]
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
            self.accelerator.print(f"train-vae: saved {self.cfg.vae.kind} VAE after {step} steps to {target} "
                                   f"(use it with --vae {folder})")

    def load_model(self, folder: Path) -> None:
        from ldm_video.vae.checkpoint import load_state_strict, read_config, read_weights

        kind = read_config(folder).get("kind")
        if kind != self.cfg.vae.kind:
            raise LdmVideoError(f"{folder}: holds a {kind!r} VAE, this run trains --kind {self.cfg.vae.kind}")
        load_state_strict(self.accelerator.unwrap_model(self.model), read_weights(folder), str(folder))

    def check_resume(self, state: dict, path: Path) -> None:
        recorded = state.get("config", {})
        saved = {k: recorded.get(k, _UNRECORDED.get(k)) for k in _RESUME_MUST_MATCH}
        now = self.cfg.to_dict()
        changed = [k for k in _RESUME_MUST_MATCH if saved[k] != now[k]]
        if changed:
            raise LdmVideoError(f"{path}: cannot resume with different " + ", ".join(
                f"--{k.replace('_', '-')} ({saved[k]} in the checkpoint, {now[k]} now)"
                for k in changed))

    def config_dict(self) -> dict:
        return self.cfg.to_dict()

    def on_start(self) -> None:
        from ldm_video.train.settings import CONFIG_NAME, save_config

        save_config(self.cfg, Path(self.cfg.run.output_dir) / CONFIG_NAME)


def train(cfg: TrainVAEConfig, progress: bool = True):
    """Run (or resume, with cfg.run.resume) a train-vae run; returns the engine's TrainResult."""
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
    check_mixed_precision(cfg.run.mixed_precision)
    from ldm_video.base import check_base
    from ldm_video.single_file import is_single_file

    base = cfg.model.base
    if is_single_file(base) or (Path(base) / "model_index.json").exists() or not Path(base).exists():
        check_base(base, cfg.model.base_variant)  # a missing or unreachable base is said before the run folder is made
    overwritten = check_output_dir(cfg.run.output_dir, cfg.run.resume, cfg.run.overwrite, run_files=RUN_FILES)
    resume_from = resume_point(cfg.run.resume, cfg.run.output_dir, main_process=launcher_main_process())
    accelerator = build_accelerator(cfg.run)  # as train's: TensorBoard under OUTPUT_DIR/logs when installed
    set_seed(cfg.run.seed)  # the temporal stacks' initialisation (all but their zeroed last conv), the same everywhere
    model = build_model(cfg)
    if cfg.run.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    model.check_num_frames(data_cfg.num_frames, what="--frames")
    lpips = LPIPSLoss().to(accelerator.device) if cfg.vae.lpips_weight > 0 else None
    dataset = VideoFolderDataset(data_cfg)
    sampler = ClipBatchSampler(image_flags(dataset), cfg.run.batch_size, seed=cfg.run.seed,
                               num_replicas=accelerator.num_processes, rank=accelerator.process_index)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.run.lr, weight_decay=cfg.run.weight_decay)
    lr_scheduler = build_lr_scheduler(optimizer, cfg.run.lr_scheduler, cfg.run.lr_warmup_steps, cfg.run.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    set_seed(cfg.run.seed + accelerator.process_index)  # each process its own dropout stream
    start_trackers(accelerator, "ldm-video-train-vae", cfg.to_dict())
    job = VAEJob(cfg, accelerator, model, optimizer, lr_scheduler, sampler,
                 make_dataloader(dataset, sampler, cfg.run.num_workers), lpips)
    settings = LoopSettings(output_dir=cfg.run.output_dir, max_steps=cfg.run.max_steps, seed=cfg.run.seed,
                            checkpoint_every=cfg.run.checkpoint_every, keep_checkpoints=cfg.run.keep_checkpoints,
                            max_grad_norm=cfg.run.max_grad_norm, nan_patience=cfg.run.nan_patience,
                            mixed_precision=cfg.run.mixed_precision, progress=progress,
                            desc=f"train-vae {cfg.vae.kind}",
                            clear_first=overwritten)
    return run_loop(job, settings, resume_from)


def run(args: argparse.Namespace) -> int:
    from ldm_video.train.settings import resolve_config

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
