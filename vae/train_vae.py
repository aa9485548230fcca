"""`ldm-video train-vae`: fine-tune a temporal-aware decoder (VidRD) or a 3D causal VAE on video clips.

temporal-decoder: the frozen SD encoder gives posterior samples; the temporal-conv stacks (or, with
`--train-decoder`, the whole decoder too) learn to reconstruct the clip, decoded with its true num_frames.
causal3d: the whole inflated model trains on reconstruction + a small KL term (LDM's kl_weight 1e-6).
Loss: L1 + temporal loss (frame differences, SPEC §5) [+ LPIPS when the lpips package and its weights are
local] [+ KL]. accelerate runs devices, mixed precision, gradient accumulation and multi-process data
sharding; checkpoints are atomic folders under OUT/checkpoints/step-N (each a loadable video VAE), resumed
with `--resume` at the exact data position; the final model goes to OUT/vae.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ldm_video.errors import LdmVideoError
from ldm_video.vae.causal3d import CausalVAE, load_causal_vae
from ldm_video.vae.interface import VideoVAE
from ldm_video.vae.losses import LPIPSLoss, kl_per_pixel, l1_loss, temporal_loss
from ldm_video.vae.temporal_decoder import TemporalDecoderVAE, load_base_vae, load_temporal_decoder
from ldm_video.vae.train_state import (
    OPTIMIZER_NAME,
    checkpoint_extra,
    latest_checkpoint,
    load_optimizer,
    prune_checkpoints,
    read_counters,
    step_folder,
)

TRAIN_KINDS = ("temporal-decoder", "causal3d")


@dataclass(frozen=True)
class TrainVAEConfig:
    """One train-vae run (saved with every checkpoint)."""

    kind: str  # "temporal-decoder" or "causal3d"
    base: str  # SD 2.x base model (folder or hub id) whose VAE is extended
    output: str  # run folder: checkpoints/ step-N, vae/ (final), train_log.jsonl
    steps: int = 1000  # optimizer steps in total (a resumed run continues up to this number)
    batch_size: int = 1  # clips per micro-batch and process
    lr: float = 1e-4  # AdamW learning rate (constant)
    weight_decay: float = 0.0  # AdamW weight decay
    gradient_accumulation: int = 1  # micro-batches per optimizer step
    mixed_precision: str = "no"  # accelerate: "no", "fp16" or "bf16"
    seed: int = 0  # data order, posterior samples and dropout all derive from it
    checkpoint_every: int = 500  # optimizer steps between checkpoints (the last step is always saved)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    train_decoder: bool = False  # temporal-decoder: fine-tune the whole 2D decoder as well
    temporal_weight: float = 1.0  # weight of the frame-difference loss
    lpips_weight: float = 0.0  # weight of LPIPS (0: off)
    kl_weight: float = 1e-6  # causal3d: weight of the per-pixel KL term
    num_workers: int = 0  # DataLoader worker processes
    gradient_checkpointing: bool = False  # recompute activations in backward to save memory


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--kind", required=True, choices=TRAIN_KINDS,
                   help="temporal-decoder: SD VAE + temporal convs in the decoder; causal3d: SD VAE inflated "
                        "to a causal 3D VAE with 4x temporal compression")
    g.add_argument("--base", required=True, help="SD 2.x base model (diffusers folder, hub id or single "
                   ".safetensors / .ckpt file; the SD 2.1 variants share one VAE)")
    g.add_argument("--output", required=True, help="run folder (checkpoints/, vae/, train_log.jsonl)")
    g.add_argument("--train-decoder", action="store_true",
                   help="temporal-decoder only: fine-tune the whole decoder, not just its temporal layers")
    d = parser.add_argument_group("data")
    d.add_argument("--data", required=True, help="folder of videos / images (captions are not needed)")
    d.add_argument("--frames", type=int, default=9, help="frames per clip (causal3d needs 4f+1: 5, 9, 17, ...)")
    d.add_argument("--resolution", default="256", help="clip size: N or HxW (multiples of 8)")
    d.add_argument("--frame-stride", type=int, default=1, help="take every n-th frame of a file")
    d.add_argument("--fps", type=float, default=None, help="sample clips at this frame rate instead of a stride")
    d.add_argument("--images", default="pseudo-video", choices=("pseudo-video", "frame", "off"),
                   help="how still images are used: zoom/pan pseudo-videos, single frames, or not at all")
    d.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    o = parser.add_argument_group("optimisation")
    o.add_argument("--steps", type=int, default=1000, help="total optimizer steps")
    o.add_argument("--batch-size", type=int, default=1, help="clips per micro-batch and process")
    o.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    o.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    o.add_argument("--gradient-accumulation", type=int, default=1, help="micro-batches per optimizer step")
    o.add_argument("--mixed-precision", default="no", choices=("no", "fp16", "bf16"), help="accelerate precision")
    o.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute activations in backward: less memory, about 30%% more time")
    o.add_argument("--seed", type=int, default=0, help="seed of data order, posterior samples and dropout")
    o.add_argument("--temporal-weight", type=float, default=1.0, help="weight of the frame-difference loss")
    o.add_argument("--lpips-weight", type=float, default=0.0,
                   help="weight of LPIPS (needs the lpips package and local AlexNet weights; 0 = off)")
    o.add_argument("--kl-weight", type=float, default=None, help="causal3d only: KL weight (default 1e-6)")
    c = parser.add_argument_group("checkpoints")
    c.add_argument("--checkpoint-every", type=int, default=500, help="optimizer steps between checkpoints")
    c.add_argument("--keep-checkpoints", type=int, default=2, help="newest checkpoints kept")
    c.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output")


def configs_from_args(args: argparse.Namespace):
    """(TrainVAEConfig, DataConfig) from parsed flags, with the flag checks."""
    from ldm_video.train.data import DataConfig

    if args.kl_weight is not None and args.kind != "causal3d":
        raise LdmVideoError("--kl-weight applies to --kind causal3d only")
    if args.train_decoder and args.kind != "temporal-decoder":
        raise LdmVideoError("--train-decoder applies to --kind temporal-decoder only (causal3d trains everything)")
    for flag in ("steps", "batch_size", "gradient_accumulation", "checkpoint_every"):
        if getattr(args, flag) < 1:
            raise LdmVideoError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.lr <= 0:
        raise LdmVideoError(f"--lr must be > 0, got {args.lr}")
    cfg = TrainVAEConfig(
        kind=args.kind, base=args.base, output=args.output, steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, weight_decay=args.weight_decay, gradient_accumulation=args.gradient_accumulation,
        mixed_precision=args.mixed_precision, seed=args.seed, checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints, train_decoder=args.train_decoder,
        temporal_weight=args.temporal_weight, lpips_weight=args.lpips_weight,
        kl_weight=1e-6 if args.kl_weight is None else args.kl_weight, num_workers=args.num_workers,
        gradient_checkpointing=args.gradient_checkpointing,
    )
    data = DataConfig(root=args.data, num_frames=args.frames, frame_stride=args.frame_stride, fps=args.fps,
                      resolution=args.resolution, crop="random", images=args.images)
    if any(s % 8 for s in data.resolution):
        raise LdmVideoError(f"--resolution {args.resolution}: height and width must be multiples of 8")
    return cfg, data


def build_model(cfg: TrainVAEConfig, resume_from: Path | None) -> VideoVAE:
    """A fresh model from the base, or the one saved in a checkpoint; trainable parameters set."""
    if cfg.kind == "temporal-decoder":
        base_vae = load_base_vae(cfg.base)
        if resume_from is not None:
            model: VideoVAE = load_temporal_decoder(resume_from, base_vae=base_vae)
        else:
            model = TemporalDecoderVAE(base_vae, base=cfg.base)
        model.set_trainable(cfg.train_decoder)
    else:
        model = load_causal_vae(resume_from) if resume_from is not None else CausalVAE(load_base_vae(cfg.base),
                                                                                       base=cfg.base)
        model.requires_grad_(True)
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
    if cfg.kind == "causal3d":
        terms["kl"] = kl_per_pixel(dist.mean.float(), dist.logvar.float(), video[0].numel())
        loss = loss + cfg.kl_weight * terms["kl"]
    terms["loss"] = loss
    return terms


def _check_resume(counters: dict, cfg: TrainVAEConfig, data_cfg, where: Path) -> None:
    saved = counters.get("config", {})
    for key in ("kind", "train_decoder"):
        if saved.get(key) != getattr(cfg, key):
            raise LdmVideoError(f"{where}: checkpoint has {key}={saved.get(key)}, this run {getattr(cfg, key)}")
    saved_data = counters.get("data", {})
    if saved_data.get("num_frames") != data_cfg.num_frames:
        raise LdmVideoError(f"{where}: checkpoint trained on {saved_data.get('num_frames')}-frame clips, "
                            f"this run asks for --frames {data_cfg.num_frames}")


def train(cfg: TrainVAEConfig, data_cfg, resume: bool = False) -> Path:
    """Run training (or, with `resume`, continue from the newest checkpoint); return the final model folder."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from ldm_video.train.data import ClipBatchSampler, VideoFolderDataset, image_flags, make_dataloader

    output = Path(cfg.output)
    resume_from = latest_checkpoint(output) if resume else None
    if resume and resume_from is None:
        raise LdmVideoError(f"{output}: no checkpoint to resume (expected {output}/checkpoints/step-N)")
    counters: dict = {}
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision,
                              gradient_accumulation_steps=cfg.gradient_accumulation)
    torch.manual_seed(cfg.seed)  # the temporal stacks' initialisation (all but their zeroed last conv)
    model = build_model(cfg, resume_from)
    if cfg.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    model.check_num_frames(data_cfg.num_frames, what="--frames")
    if resume_from is not None:
        counters = read_counters(resume_from)
        _check_resume(counters, cfg, data_cfg, resume_from)
    lpips = LPIPSLoss().to(accelerator.device) if cfg.lpips_weight > 0 else None
    dataset = VideoFolderDataset(data_cfg)
    sampler = ClipBatchSampler(image_flags(dataset), cfg.batch_size, seed=cfg.seed,
                               num_replicas=accelerator.num_processes, rank=accelerator.process_index)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if counters:
        load_optimizer(optimizer, resume_from / OPTIMIZER_NAME, counters["param_groups"])
    model, optimizer = accelerator.prepare(model, optimizer)
    step, epoch, batch_index = (counters.get(k, 0) for k in ("step", "epoch", "batch"))
    micro = step * cfg.gradient_accumulation  # micro-batches done, seeds the per-micro-batch randomness
    log_path = output / "train_log.jsonl"
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        if resume_from is not None:
            accelerator.print(f"train-vae: resuming {resume_from} at step {step}")
    progress = tqdm(total=cfg.steps, initial=step, desc=f"train-vae {cfg.kind}", unit="step",
                    disable=not accelerator.is_local_main_process)
    while step < cfg.steps:  # step: one pass over the epoch's batches
        sampler.set_epoch(epoch, start_batch=batch_index)
        for batch in make_dataloader(dataset, sampler, cfg.num_workers):
            batch_index += 1
            video = batch["pixel_values"].to(accelerator.device)  # (b, 3, F, H, W) in [-1, 1]
            torch.manual_seed(cfg.seed * 1_000_003 + micro)  # dropout
            generator = torch.Generator(accelerator.device).manual_seed(cfg.seed * 7_919 + micro)
            micro += 1
            with accelerator.accumulate(model):
                terms = loss_terms(model, video, cfg, generator, lpips)
                if not math.isfinite(float(terms["loss"].detach())):
                    raise LdmVideoError(f"loss became {float(terms['loss'])} at step {step}; lower --lr "
                                        f"or use --mixed-precision no")
                accelerator.backward(terms["loss"])
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            step += 1
            values = {k: round(float(v.detach()), 6) for k, v in terms.items()}
            progress.update(1)
            progress.set_postfix(loss=f"{values['loss']:.4f}")
            if accelerator.is_main_process:
                with log_path.open("a") as f:
                    f.write(json.dumps({"step": step, **values}) + "\n")
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                state = {"step": step, "epoch": epoch, "batch": batch_index, "config": asdict(cfg),
                         "data": json.loads(json.dumps(asdict(data_cfg), default=str))}
                if accelerator.is_main_process:
                    accelerator.unwrap_model(model).save(
                        step_folder(output, step), metadata={"step": step},
                        extra=checkpoint_extra(optimizer.optimizer if hasattr(optimizer, "optimizer")
                                               else optimizer, state))
                    prune_checkpoints(output, cfg.keep_checkpoints)
                accelerator.wait_for_everyone()
            if step >= cfg.steps:
                break
        else:
            epoch, batch_index = epoch + 1, 0
    progress.close()
    final = output / "vae"
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save(final, metadata={"step": step, "config": asdict(cfg)})
        accelerator.print(f"train-vae: saved {cfg.kind} VAE after {step} steps to {final} "
                          f"(use it with --vae {final})")
    accelerator.wait_for_everyone()
    return final


def run(args: argparse.Namespace) -> int:
    cfg, data_cfg = configs_from_args(args)
    existing = latest_checkpoint(cfg.output)
    if not args.resume and existing is not None:
        raise LdmVideoError(f"{cfg.output}: already holds checkpoints ({existing.name}); pass --resume to "
                            f"continue, or choose another --output")
    train(cfg, data_cfg, resume=args.resume)
    return 0
