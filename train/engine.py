"""One training loop for every ldm-video trainer: the temporal layers of the video U-Net (`ldm-video train`)
and the video VAEs (`ldm-video train-vae`) differ only in their model and loss (a `Job`); the loop, its
checkpoints, resume rule, Ctrl-C / SIGTERM handling, NaN policy, progress bar and log are this module.

- Gradient accumulation is accelerate's `accumulate()`; several processes are accelerate's data parallelism.
- A checkpoint is `OUTPUT_DIR/checkpoints/step-0000123/`: the job's model part (a loadable folder: `temporal/`
  for the U-Net's layers, `vae/` for a video VAE), `optimizer.safetensors` + `.json`, the job's extra states
  (e.g. `ema`), `rng-rank<r>.safetensors` per process, and `state.json` written last (step, data position,
  LR schedule, the run's config). It is assembled in a temporary folder and renamed into place.
- Ctrl-C or SIGTERM finishes the current optimiser step, writes a checkpoint and returns `interrupted`
  (the commands exit 130); `--resume latest` continues bit-for-bit on CPU.
- A NaN / inf loss or gradient skips the step on every process with a warning; `nan_patience` skipped steps in a
  row abort with the last good checkpoint named.
- `OUTPUT_DIR/train_log.jsonl` holds one line per optimiser step (the job's loss terms); a resumed run first
  drops the lines after the step it resumes from, so the log never mixes two histories.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from typing_extensions import Self

from ldm_video.errors import LdmVideoError
from ldm_video.train.state import (
    Position,
    begin_checkpoint,
    clear_run,
    finish_checkpoint,
    load_state_dict,
    read_state,
    resolve_resume,
    rng_state,
    save_state_dict,
    set_rng_state,
)

logger = logging.getLogger("ldm_video.train")

LOG_NAME = "train_log.jsonl"


@dataclass(frozen=True)
class LoopSettings:
    """How the loop runs; every trainer fills it from its own config."""

    output_dir: str
    max_steps: int
    seed: int
    checkpoint_every: int
    keep_checkpoints: int
    max_grad_norm: float = 1.0  # 0 = no clipping
    nan_patience: int = 5  # NaN/inf steps in a row before the run aborts
    mixed_precision: str = "no"  # fp16's scaler skips inf steps itself: its gradient norms are not checked
    progress: bool = True
    desc: str = "training"
    clear_first: tuple[str, ...] = ()  # --overwrite: the earlier run's files, deleted once setup has succeeded


class Job:
    """What a trainer gives the loop: its prepared model and optimiser, its data and its loss. Subclasses fill in
    the attributes and the methods without a body here; the hooks below do nothing unless overridden."""

    accelerator: Any  # accelerate.Accelerator (built with gradient_accumulation_steps)
    model: torch.nn.Module  # as returned by accelerator.prepare
    optimizer: Any  # as returned by accelerator.prepare
    lr_scheduler: Any  # torch LR scheduler (state saved in every checkpoint)
    sampler: Any  # ClipBatchSampler: set_epoch(epoch, start_batch=...)
    loader: Any  # iterable of batches drawn through `sampler`
    model_part: str  # the checkpoint subfolder the job's model is saved in ("temporal", "vae")

    def loss(self, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss terms of one micro-batch, their weighted sum under "loss" (not yet backpropagated)."""
        raise NotImplementedError

    def trainable_parameters(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def save_model(self, folder: Path, step: int, final: bool) -> None:
        """Main process: write the model part of a checkpoint (final=False) or the run's result (final=True)."""
        raise NotImplementedError

    def load_model(self, folder: Path) -> None:
        """Restore what `save_model(folder, final=False)` wrote."""
        raise NotImplementedError

    def check_resume(self, state: dict, path: Path) -> None:
        """Refuse (LdmVideoError) a checkpoint whose saved config cannot continue this run."""
        raise NotImplementedError

    def config_dict(self) -> dict:
        """The run's config, saved in every checkpoint's state.json."""
        raise NotImplementedError

    def on_start(self) -> None:
        """Main process, once the resume checkpoint (if any) is checked and loaded: write the run's config file."""
        raise NotImplementedError

    def extra_states(self) -> dict[str, dict]:
        """Further state dicts kept in checkpoints (e.g. {"ema": ...})."""
        return {}

    def load_extra_states(self, states: dict[str, object]) -> None:
        """Restore what `extra_states` gave, read back from a checkpoint (same names)."""

    def after_optimizer_step(self) -> None:
        """After each applied optimiser update (e.g. the EMA)."""

    def after_step(self, step: int, last: bool) -> None:
        """After each optimiser step, applied or skipped, checkpoint written (e.g. validation videos)."""


@dataclass
class TrainResult:
    """What a run did."""

    step: int  # optimiser steps completed (counting skipped ones)
    interrupted: bool  # stopped by Ctrl-C / SIGTERM (a checkpoint was written)
    output_dir: Path
    losses: list[float] = field(default_factory=list)  # per optimiser step of this process (NaN = skipped)
    checkpoint: Path | None = None  # the last checkpoint written
    main_process: bool = True  # this process is the one that reports


class StopFlag:
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


def check_mixed_precision(mixed_precision: str) -> None:
    """LdmVideoError unless `mixed_precision` can run here (fp16 needs a CUDA GPU)."""
    if mixed_precision == "fp16" and not torch.cuda.is_available():
        raise LdmVideoError("--mixed-precision fp16 needs a CUDA GPU; use bf16 (or no) on the CPU")


def build_accelerator(settings, find_unused_parameters: bool = False):
    """The Accelerator of every trainer, from its `RunSettings` (precision, accumulation, output folder): the GPU
    when there is one, else the CPU (so `accelerate launch --multi_gpu --num_processes N` runs N gloo processes),
    and TensorBoard under OUTPUT_DIR/logs when tensorboard (or tensorboardX) is installed."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration

    check_mixed_precision(settings.mixed_precision)
    tracker = "tensorboard" if importlib.util.find_spec("tensorboard") or importlib.util.find_spec(
        "tensorboardX") else None
    return Accelerator(
        mixed_precision=settings.mixed_precision,
        gradient_accumulation_steps=settings.grad_accum,  # the loop's accumulate()
        cpu=not torch.cuda.is_available(),
        log_with=tracker,
        project_config=ProjectConfiguration(project_dir=settings.output_dir,
                                            logging_dir=str(Path(settings.output_dir) / "logs")),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)],
    )


def start_trackers(accelerator, project: str, config: dict) -> None:
    """Open the TensorBoard log of a run (when the accelerator has one), with the run's settings as text."""
    if accelerator.log_with:
        accelerator.init_trackers(project, config={k: str(v) for k, v in config.items()})


def any_process(accelerator, flag: bool) -> bool:
    """True when `flag` is True on any process (a collective: every process must call it)."""
    if accelerator.num_processes == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(t, reduction="sum").item() > 0)


def _batches(job: Job, position: Position) -> Iterator[tuple[int, int, dict]]:
    """(epoch, batches read in that epoch after this one, batch) forever, from `position` on."""
    epoch, start = position.epoch, position.batch_in_epoch
    while True:
        job.sampler.set_epoch(epoch, start_batch=start)
        for n, batch in enumerate(job.loader, start=start + 1):
            yield epoch, n, batch
        epoch, start = epoch + 1, 0


def save_checkpoint(job: Job, settings: LoopSettings, position: Position, generator: torch.Generator) -> Path:
    """Assemble a checkpoint (every process writes its RNG; the main process the rest); returns its path."""
    acc = job.accelerator
    tmp = Path(settings.output_dir) / "checkpoints" / f".tmp-step-{position.step:07d}"
    if acc.is_main_process:
        tmp = begin_checkpoint(settings.output_dir, position.step)
    acc.wait_for_everyone()
    save_file(rng_state(generator), str(tmp / f"rng-rank{acc.process_index}.safetensors"))
    acc.wait_for_everyone()
    final = tmp.parent / f"step-{position.step:07d}"
    if acc.is_main_process:
        job.save_model(tmp / job.model_part, position.step, final=False)
        optimizer = getattr(job.optimizer, "optimizer", job.optimizer)  # the torch optimiser inside accelerate's
        save_state_dict(optimizer.state_dict(), tmp, "optimizer")
        for name, state in job.extra_states().items():
            save_state_dict(state, tmp, name)
        state = {"step": position.step, "epoch": position.epoch, "batch_in_epoch": position.batch_in_epoch,
                 "num_processes": acc.num_processes, "lr_scheduler": job.lr_scheduler.state_dict(),
                 "config": job.config_dict()}
        final = finish_checkpoint(tmp, state, settings.keep_checkpoints)
    acc.wait_for_everyone()
    return final


def load_checkpoint(job: Job, path: Path, generator: torch.Generator) -> Position:
    """Restore model, optimiser, LR schedule, extra states, RNG and data position from `path`."""
    acc = job.accelerator
    state = read_state(path)
    job.check_resume(state, path)
    if state.get("num_processes") != acc.num_processes:
        raise LdmVideoError(f"{path}: written by {state.get('num_processes')} processes, resumed with "
                            f"{acc.num_processes}; resume with the same number of processes")
    if not (path / job.model_part).is_dir():
        raise LdmVideoError(f"{path}: not a checkpoint of this trainer (no {job.model_part}/ inside)")
    job.load_model(path / job.model_part)
    optimizer = getattr(job.optimizer, "optimizer", job.optimizer)
    try:
        optimizer.load_state_dict(load_state_dict(path, "optimizer"))
    except (ValueError, KeyError) as err:
        raise LdmVideoError(f"{path}: optimizer state does not fit this run ({err})") from None
    job.lr_scheduler.load_state_dict(state["lr_scheduler"])
    job.load_extra_states({name: load_state_dict(path, name) for name in job.extra_states()})
    rng_file = path / f"rng-rank{acc.process_index}.safetensors"
    if not rng_file.is_file():
        raise LdmVideoError(f"{path}: no RNG state for process {acc.process_index}")
    set_rng_state(load_file(str(rng_file)), generator)
    return Position(state["step"], state["epoch"], state["batch_in_epoch"])


class TrainLog:
    """OUTPUT_DIR/train_log.jsonl, one JSON line per optimiser step; a resumed run keeps the lines up to its step."""

    def __init__(self, path: Path, step: int, main_process: bool) -> None:
        self.path, self.enabled = path, main_process
        if not main_process:
            return
        kept = []
        if step and path.is_file():
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= step:
                        kept.append(line)
                except json.JSONDecodeError:
                    break  # a line cut by a crash: everything after it is lost anyway
        path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


def run_loop(job: Job, settings: LoopSettings, resume_from: Path | None) -> TrainResult:
    """Train `job` up to settings.max_steps (continuing `resume_from` when given); the run's result is saved
    by the job (`save_model(OUTPUT_DIR, final=True)`) unless interrupted."""
    acc = job.accelerator
    out = Path(settings.output_dir)
    generator = torch.Generator().manual_seed(settings.seed * 7919 + acc.process_index)  # noise, t, dropout
    position = Position(0, 0, 0)
    if resume_from is not None:
        position = load_checkpoint(job, resume_from, generator)
        if acc.is_main_process:
            logger.warning("resumed from %s (step %d)", resume_from, position.step)
    if acc.is_main_process:
        clear_run(out, settings.clear_first)  # nothing is deleted or written before every check has passed
        job.on_start()
    log = TrainLog(out / LOG_NAME, position.step, acc.is_main_process)
    result = TrainResult(step=position.step, interrupted=False, output_dir=out, main_process=acc.is_main_process)
    bar = tqdm(total=settings.max_steps, initial=position.step, desc=settings.desc, unit="step",
               disable=not (settings.progress and acc.is_main_process), dynamic_ncols=True)
    bad_in_row, step_bad, terms_sum, micro = 0, False, {}, 0
    params = job.trainable_parameters()
    job.model.train()
    with StopFlag() as stop:
        batches = _batches(job, position)
        while position.step < settings.max_steps:
            if micro == 0 and any_process(acc, stop.requested):  # between optimiser steps only
                result.checkpoint = save_checkpoint(job, settings, position, generator)
                result.interrupted = True
                break
            epoch, batch_in_epoch, batch = next(batches)
            with acc.accumulate(job.model):
                terms = job.loss(batch, generator)
                micro += 1
                if any_process(acc, not bool(torch.isfinite(terms["loss"]).item())):
                    step_bad = True  # every process skips the backward pass together (no collective hangs)
                elif not step_bad:
                    acc.backward(terms["loss"])  # divided by the accumulation steps by accelerate
                    for k, v in terms.items():
                        terms_sum[k] = terms_sum.get(k, 0.0) + float(v.detach())
                if not acc.sync_gradients:
                    continue
                # step: optimiser update (or skip)
                if not step_bad and settings.max_grad_norm > 0:
                    norm = acc.clip_grad_norm_(params, settings.max_grad_norm)
                    step_bad = settings.mixed_precision != "fp16" and not math.isfinite(float(norm))
                if not step_bad:
                    job.optimizer.step()
            step_loss = {k: v / micro for k, v in terms_sum.items()}
            job.optimizer.zero_grad(set_to_none=True)
            if step_bad:
                bad_in_row += 1
                if acc.is_main_process:
                    logger.warning("step %d: loss or gradients are NaN/inf; step skipped (%d in a row)",
                                   position.step + 1, bad_in_row)
                if bad_in_row >= settings.nan_patience:
                    last = result.checkpoint or resolve_resume("latest", settings.output_dir)
                    raise LdmVideoError(
                        f"training diverged: {bad_in_row} NaN/inf steps in a row at step {position.step + 1}; "
                        f"last good checkpoint: {last or 'none yet'} (try a lower --lr or --mixed-precision bf16)")
            else:
                bad_in_row = 0
                if not acc.optimizer_step_was_skipped:
                    job.after_optimizer_step()
            job.lr_scheduler.step()
            position = Position(position.step + 1, epoch, batch_in_epoch)
            result.losses.append(float("nan") if step_bad else step_loss["loss"])
            lr = job.lr_scheduler.get_last_lr()[0]
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss['loss']:.4f}" if not step_bad else "skipped", lr=f"{lr:.2e}")
            if not step_bad:
                log.write({"step": position.step, **{k: round(v, 6) for k, v in step_loss.items()}, "lr": lr})
                acc.log({f"train/{k}": v for k, v in step_loss.items()} | {"train/lr": lr}, step=position.step)
            step_bad, terms_sum, micro = False, {}, 0
            last = position.step == settings.max_steps
            if position.step % settings.checkpoint_every == 0 or last:
                result.checkpoint = save_checkpoint(job, settings, position, generator)
            job.after_step(position.step, last)
    bar.close()
    result.step = position.step
    if not result.interrupted:
        if acc.is_main_process:
            job.save_model(out, position.step, final=True)
        acc.wait_for_everyone()
    acc.end_training()
    return result
