"""The training loop: fine-tune the temporal layers (and optional LoRA) of a frozen SD 2.x U-Net on video.

Data path, top to bottom (DiT style): clip (b, 3, f, H, W) -> VAE latents (b, 4, f, h, w) -> x_t with noise
from a PYoCo prior (Ge et al. 2023, eqs. 3-4) -> video U-Net -> epsilon / v loss (the base's prediction type).
Built on accelerate (devices, mixed precision, several processes); resumable bit-for-bit on CPU.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from typing_extensions import Self

from ldm_video.errors import LdmVideoError
from ldm_video.train import objective
from ldm_video.train.config import CONFIG_NAME, TrainConfig, config_from_dict, save_config
from ldm_video.train.setup import Run, setup_run
from ldm_video.train.state import (
    Position,
    begin_checkpoint,
    check_output_dir,
    finish_checkpoint,
    load_state_dict,
    read_state,
    resolve_resume,
    rng_state,
    save_state_dict,
    set_rng_state,
)

logger = logging.getLogger("ldm_video.train")

# settings that change the model's shape or the data stream: a checkpoint cannot resume under other values
_RESUME_MUST_MATCH = ("temporal_layers", "attention_heads", "conv_depth", "conv_dropout", "lora_rank", "optimizer", "ema",
                      "batch_size", "grad_accum", "seed")


@dataclass
class TrainResult:
    """What a run did."""

    step: int  # optimiser steps completed (counting skipped ones)
    interrupted: bool  # stopped by Ctrl-C / SIGTERM (a checkpoint was written)
    output_dir: Path
    losses: list[float] = field(default_factory=list)  # per optimiser step of this process (NaN = skipped)
    checkpoint: Path | None = None  # the last checkpoint written
    main_process: bool = True  # this process is the one that reports


class _StopFlag:
    """Ctrl-C / SIGTERM set a flag checked between steps; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, object] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("stop requested: finishing this step, writing a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _any_process(run: Run, flag: bool) -> bool:
    """True when `flag` is True on any process (a collective: every process must call it)."""
    if run.accelerator.num_processes == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=run.accelerator.device)
    return bool(run.accelerator.reduce(t, reduction="sum").item() > 0)


def _batches(run: Run, position: Position) -> Iterator[tuple[int, int, dict]]:
    """(epoch, batches read in that epoch after this one, batch) forever, from `position` on."""
    epoch, start = position.epoch, position.batch_in_epoch
    while True:
        run.sampler.set_epoch(epoch, start_batch=start)
        for n, batch in enumerate(run.loader, start=start + 1):
            yield epoch, n, batch
        epoch, start = epoch + 1, 0


def _micro_step(run: Run, batch: dict, generator: torch.Generator) -> torch.Tensor:
    """Loss of one micro-batch (not yet backpropagated)."""
    cfg, device = run.config, run.accelerator.device
    if "latents" in batch:  # from the latent cache
        latents = batch["latents"].to(device, torch.float32)  # (b, 4, f, h, w)
        text = batch["text"].to(device, run.weight_dtype)  # (b, seq, dim)
    else:
        pixels = batch["pixel_values"].to(device, run.weight_dtype)  # (b, 3, f, H, W)
        latents = run.encode_video(pixels, generator).float()  # (b, 4, f, h, w), scaled by the VAE's factor
        text = run.encode_prompts(batch["caption"]).to(run.weight_dtype)  # (b, seq, dim)
    b = latents.shape[0]
    drop = torch.rand(b, generator=generator) < cfg.caption_dropout  # (b,) caption dropout for CFG
    empty = run.empty_text.to(device, text.dtype)  # (seq, dim)
    text = torch.where(drop.to(device)[:, None, None], empty[None], text)  # (b, seq, dim)
    noise = objective.training_noise(latents, cfg.noise_prior, cfg.noise_alpha, generator)  # (b, 4, f, h, w)
    steps = run.noise_scheduler.config.num_train_timesteps
    weights = None if cfg.timestep_bias == "none" else objective.timestep_weights(
        steps, cfg.timestep_bias, cfg.timestep_bias_multiplier, cfg.timestep_bias_portion)  # (T,)
    t = objective.sample_timesteps(b, steps, generator, device, weights)  # (b,)
    x_t = objective.noisy_latents(run.noise_scheduler, latents, noise, t)  # (b, 4, f, h, w)
    target = objective.training_target(run.prediction_type, run.noise_scheduler, latents, noise, t)
    with run.accelerator.autocast():
        prediction = run.model(x_t.to(run.weight_dtype).contiguous(), t, text).sample  # (b, 4, f, h, w)
    return objective.diffusion_loss(prediction, target)


def _save_checkpoint(run: Run, position: Position, generator: torch.Generator) -> Path:
    """Assemble a checkpoint (every process writes its RNG; the main process the rest); returns its path."""
    acc, cfg = run.accelerator, run.config
    tmp = Path(cfg.output_dir) / "checkpoints" / f".tmp-step-{position.step:07d}"
    if acc.is_main_process:
        tmp = begin_checkpoint(cfg.output_dir, position.step)
    acc.wait_for_everyone()
    save_file(rng_state(generator), str(tmp / f"rng-rank{acc.process_index}.safetensors"))
    acc.wait_for_everyone()
    final = tmp.parent / f"step-{position.step:07d}"
    if acc.is_main_process:
        run.save_weights(tmp / "temporal", use_ema=False, step=position.step)
        save_state_dict(run.optimizer.state_dict(), tmp, "optimizer")
        if run.ema is not None:
            save_state_dict(run.ema.state_dict(), tmp, "ema")
        state = {"step": position.step, "epoch": position.epoch, "batch_in_epoch": position.batch_in_epoch,
                 "num_processes": acc.num_processes, "lr_scheduler": run.lr_scheduler.state_dict(),
                 "config": run.config.to_dict()}
        final = finish_checkpoint(tmp, state, cfg.keep_checkpoints)
    acc.wait_for_everyone()
    return final


def _load_checkpoint(run: Run, path: Path, generator: torch.Generator) -> Position:
    """Restore weights, optimiser, LR schedule, EMA, RNG and data position from `path`."""
    acc = run.accelerator
    state = read_state(path)
    saved = config_from_dict(state.get("config", {}), str(path))
    changed = [k for k in _RESUME_MUST_MATCH if getattr(saved, k) != getattr(run.config, k)]
    if changed:
        raise LdmVideoError(f"{path}: cannot resume with different " + ", ".join(
            f"--{k.replace('_', '-')} ({getattr(saved, k)} in the checkpoint, {getattr(run.config, k)} now)"
            for k in changed))
    if state["num_processes"] != acc.num_processes:
        raise LdmVideoError(f"{path}: written by {state['num_processes']} processes, resumed with "
                            f"{acc.num_processes}; resume with the same number of processes")
    from ldm_video.checkpoint import WEIGHTS_NAME, load_temporal_state

    load_temporal_state(run.unwrapped, load_file(str(path / "temporal" / WEIGHTS_NAME)), source=str(path))
    run.optimizer.load_state_dict(load_state_dict(path, "optimizer"))
    run.lr_scheduler.load_state_dict(state["lr_scheduler"])
    if run.ema is not None:
        run.ema.load_state_dict(load_state_dict(path, "ema"))
    rng_file = path / f"rng-rank{acc.process_index}.safetensors"
    if not rng_file.is_file():
        raise LdmVideoError(f"{path}: no RNG state for process {acc.process_index}")
    set_rng_state(load_file(str(rng_file)), generator)
    return Position(state["step"], state["epoch"], state["batch_in_epoch"])


def _validate(run: Run, step: int) -> None:
    """Main process samples the validation prompts (EMA weights when kept); the others wait."""
    acc = run.accelerator
    if acc.is_main_process:
        from ldm_video.train.validate import write_validation_videos

        params = run.unwrapped.trainable_parameters()
        if run.ema is not None:
            run.ema.store(params)
            run.ema.copy_to(params)
        vae = run.validation_vae()
        try:
            with acc.autocast():  # fp32 temporal layers on bf16 / fp16 spatial weights, as in training
                paths = write_validation_videos(
                    run.unwrapped, vae, dict(run.noise_scheduler.config), list(run.config.validation_prompt),
                    run.validation_embeds.to(acc.device), run.empty_text.to(acc.device),
                    Path(run.config.output_dir) / "validation", step, run.latent_frames(), run.resolution,
                    run.config.validation_steps, run.config.validation_guidance, run.config.noise_prior,
                    run.config.noise_alpha, run.config.seed)
        finally:
            run.release_validation_vae(vae)
            if run.ema is not None:
                run.ema.restore(params)
        logger.info("validation videos: %s", ", ".join(str(p) for p in paths))
    acc.wait_for_everyone()


def train(config: TrainConfig, progress: bool = True) -> TrainResult:
    """Run (or resume) a training run described by `config`; returns what it did."""
    # before the accelerator exists (its process group must be set up by setup_run alone): the launcher's rank
    main_process = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0
    check_output_dir(config.output_dir, config.resume, config.overwrite, clear=main_process)
    resume_from = resolve_resume(config.resume, config.output_dir)  # a bad --resume fails before any work
    run = setup_run(config, progress=progress)
    acc, cfg = run.accelerator, config
    out = Path(cfg.output_dir)
    if acc.is_main_process:
        save_config(cfg, out / CONFIG_NAME)
    generator = torch.Generator().manual_seed(cfg.seed * 7919 + acc.process_index)  # noise, t, dropout, VAE
    position = Position(0, 0, 0)
    if resume_from is not None:
        position = _load_checkpoint(run, resume_from, generator)
        if acc.is_main_process:
            logger.warning("resumed from %s (step %d)", resume_from, position.step)
    elif cfg.resume == "latest" and acc.is_main_process:
        logger.warning("--resume latest: no checkpoint in %s yet, starting from scratch", out / "checkpoints")
    result = TrainResult(step=position.step, interrupted=False, output_dir=out, main_process=acc.is_main_process)
    bar = tqdm(total=cfg.max_steps, initial=position.step, desc="training", unit="step",
               disable=not (progress and acc.is_main_process), dynamic_ncols=True)
    bad_in_row, micro, step_bad, step_loss = 0, 0, False, 0.0
    run.model.train()
    with _StopFlag() as stop:
        batches = _batches(run, position)
        while position.step < cfg.max_steps:
            at_boundary = micro % cfg.grad_accum == 0
            if at_boundary and _any_process(run, stop.requested):  # between optimiser steps only
                result.checkpoint = _save_checkpoint(run, position, generator)
                result.interrupted = True
                break
            epoch, batch_in_epoch, batch = next(batches)
            # step: one micro-batch
            loss = _micro_step(run, batch, generator)
            finite = bool(torch.isfinite(loss).item())
            micro += 1
            last_micro = micro % cfg.grad_accum == 0
            if _any_process(run, not finite):
                step_bad = True  # every process skips the backward pass together (no collective hangs)
            elif not step_bad:
                with acc.no_sync(run.model) if not last_micro else contextlib.nullcontext():
                    acc.backward(loss / cfg.grad_accum)
                step_loss += float(loss.detach()) / cfg.grad_accum
            if not last_micro:
                continue
            # step: optimiser update (or skip)
            if not step_bad and cfg.max_grad_norm > 0:
                norm = acc.clip_grad_norm_(run.model.parameters(), cfg.max_grad_norm)
                step_bad = cfg.mixed_precision != "fp16" and not math.isfinite(float(norm))
            if step_bad:
                bad_in_row += 1
                if acc.is_main_process:
                    logger.warning("step %d: loss or gradients are NaN/inf; step skipped (%d in a row)",
                                   position.step + 1, bad_in_row)
                if bad_in_row >= cfg.nan_patience:
                    last = result.checkpoint or resolve_resume("latest", cfg.output_dir)
                    raise LdmVideoError(
                        f"training diverged: {bad_in_row} NaN/inf steps in a row at step {position.step + 1}; "
                        f"last good checkpoint: {last or 'none yet'} (try a lower --lr or --mixed-precision bf16)")
            else:
                bad_in_row = 0
                run.optimizer.step()
                if run.ema is not None and not acc.optimizer_step_was_skipped:
                    run.ema.step(run.unwrapped.trainable_parameters())
            run.optimizer.zero_grad(set_to_none=True)
            run.lr_scheduler.step()
            position = Position(position.step + 1, epoch, batch_in_epoch)
            result.losses.append(float("nan") if step_bad else step_loss)
            lr = run.lr_scheduler.get_last_lr()[0]
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}" if not step_bad else "skipped", lr=f"{lr:.2e}")
            if not step_bad:
                acc.log({"train/loss": step_loss, "train/lr": lr}, step=position.step)
            step_bad, step_loss = False, 0.0
            if position.step % cfg.checkpoint_every == 0 or position.step == cfg.max_steps:
                result.checkpoint = _save_checkpoint(run, position, generator)
            if cfg.validate_every and cfg.validation_prompt and (
                    position.step % cfg.validate_every == 0 or position.step == cfg.max_steps):
                _validate(run, position.step)
    bar.close()
    result.step = position.step
    if not result.interrupted:
        if acc.is_main_process:
            run.save_weights(out, use_ema=run.ema is not None, step=position.step)
        acc.wait_for_everyone()
    acc.end_training()
    return result
