"""The training loop of `ldm-video train`: fine-tune the temporal layers (and optional LoRA) of a frozen SD 2.x
U-Net on video. The loop itself (checkpoints, resume, Ctrl-C, NaN policy, log) is `ldm_video.train.engine`,
shared with `train-vae`; this module is the model and its loss.

Data path, top to bottom (DiT style): clip (b, 3, f, H, W) -> VAE latents (b, 4, f, h, w) -> x_t with noise
from a PYoCo prior (Ge et al. 2023, eqs. 3-4) -> video U-Net -> epsilon / v loss (the base's prediction type).
Built on accelerate (devices, mixed precision, several processes); resumable bit-for-bit on CPU.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import load_file

from ldm_video.errors import LdmVideoError
from ldm_video.train import objective
from ldm_video.train.config import TrainConfig
from ldm_video.train.engine import Job, LoopSettings, TrainResult, run_loop
from ldm_video.train.settings import CONFIG_NAME, config_from_dict, save_config
from ldm_video.train.setup import Run, setup_run
from ldm_video.train.state import check_output_dir, launcher_main_process, resume_point

logger = logging.getLogger("ldm_video.train")

__all__ = ["TrainResult", "train"]

# settings that change the model's shape or the data stream: a checkpoint cannot resume under other values
_RESUME_MUST_MATCH = ("temporal_layers", "attention_heads", "attention_layers", "mid_block", "max_frames",
                      "conv_depth", "conv_dropout", "lora_rank", "optimizer", "ema", "context_frames", "context_noise",
                      "context_slowdown", "context_causal", "batch_size", "grad_accum", "seed")


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
    drop = torch.rand(b, generator=generator) < cfg.objective.caption_dropout  # (b,) caption dropout for CFG
    empty = run.empty_text.to(device, text.dtype)  # (seq, dim)
    text = torch.where(drop.to(device)[:, None, None], empty[None], text)  # (b, seq, dim)
    noise = objective.training_noise(latents, cfg.objective.noise_prior, cfg.objective.noise_alpha,
                                     generator)  # (b, 4, f, h, w)
    steps = run.noise_scheduler.config.num_train_timesteps
    weights = None if cfg.objective.timestep_bias == "none" else objective.timestep_weights(
        steps, cfg.objective.timestep_bias, cfg.objective.timestep_bias_multiplier,
        cfg.objective.timestep_bias_portion)  # (T,)
    t = objective.sample_timesteps(b, steps, generator, device, weights)  # (b,)
    x_t = objective.noisy_latents(run.noise_scheduler, latents, noise, t)  # (b, 4, f, h, w)
    target = objective.training_target(run.prediction_type, run.noise_scheduler, latents, noise, t)
    given, t_model = None, t
    if cfg.context.context_frames and latents.shape[2] > 1:  # frame conditioning (one-frame images skip the temporal
        # layers, so they get none): some clips' first frames clean at t = 0, left out of the loss; `train` has
        # checked that frames are left to denoise
        given = objective.context_mask(b, latents.shape[2], cfg.context.context_frames, cfg.context.prob,
                                       generator)  # (b, f)
        context, t_context = latents, None  # clean given frames at t = 0 ...
        if cfg.context.context_slowdown:  # ... some replayed slower than they happened (history slow-down)
            context = objective.slowed_context(latents, cfg.context.context_frames, cfg.context.context_slowdown,
                                               generator)  # (b, 4, f, h, w)
        if cfg.context.context_noise:  # ... or noised to a random level t_c <= --context-noise (noise augmentation)
            t_context = objective.context_timesteps(b, cfg.context.context_noise, generator, device)  # (b,)
            context = objective.noisy_latents(run.noise_scheduler, context, noise, t_context)  # (b, 4, f, h, w)
        x_t, t_model = objective.with_context(x_t, context, t, given, t_context)  # (b, 4, f, h, w), (b, f)
    causal = {"given": given.to(device)} if cfg.context.context_causal and given is not None else {}  # block-causal:
    # the given frames attend only to each other, as `generate` runs them (once per clip, keys and values cached)
    with run.accelerator.autocast():
        prediction = run.model(x_t.to(run.weight_dtype).contiguous(), t_model, text, **causal).sample  # (b, 4, f, h, w)
    return objective.diffusion_loss(prediction, target, given)


class TemporalJob(Job):
    """The video U-Net's temporal layers as an engine job (`ldm_video.train.engine.Job`)."""

    model_part = "temporal"  # checkpoint subfolder: the `save_temporal` format, loadable by generate --motion

    def __init__(self, run: Run) -> None:
        self.run = run
        self.accelerator, self.model, self.optimizer = run.accelerator, run.model, run.optimizer
        self.lr_scheduler, self.sampler, self.loader = run.lr_scheduler, run.sampler, run.loader

    def loss(self, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        loss = _micro_step(self.run, batch, generator)
        if not loss.requires_grad:  # one-frame images skip the temporal layers: without LoRA nothing trains on them
            loss = loss + sum(p.sum() * 0.0 for p in self.trainable_parameters())  # zero gradients, same collectives
        return {"loss": loss}

    def trainable_parameters(self) -> list[torch.Tensor]:
        return self.run.unwrapped.trainable_parameters()

    def save_model(self, folder: Path, step: int, final: bool) -> None:
        self.run.save_weights(folder, use_ema=final and self.run.ema is not None, step=step)

    def load_model(self, folder: Path) -> None:
        from ldm_video.checkpoint import WEIGHTS_NAME, load_temporal_state

        load_temporal_state(self.run.unwrapped, load_file(str(folder / WEIGHTS_NAME)), source=str(folder.parent))

    def extra_states(self) -> dict[str, dict]:
        return {"ema": self.run.ema.state_dict()} if self.run.ema is not None else {}

    def load_extra_states(self, states: dict[str, object]) -> None:
        if self.run.ema is not None:
            self.run.ema.load_state_dict(states["ema"])

    def check_resume(self, state: dict, path: Path) -> None:
        saved = config_from_dict(state.get("config", {}), TrainConfig, str(path)).to_dict()
        now = self.run.config.to_dict()
        changed = [k for k in _RESUME_MUST_MATCH if saved[k] != now[k]]
        if changed:
            raise LdmVideoError(f"{path}: cannot resume with different " + ", ".join(
                f"--{k.replace('_', '-')} ({saved[k]} in the checkpoint, {now[k]} now)" for k in changed))

    def config_dict(self) -> dict:
        return self.run.config.to_dict()

    def on_start(self) -> None:
        save_config(self.run.config, Path(self.run.config.run.output_dir) / CONFIG_NAME)

    def after_optimizer_step(self) -> None:
        if self.run.ema is not None:
            self.run.ema.step(self.run.unwrapped.trainable_parameters())

    def after_step(self, step: int, last: bool) -> None:
        every = self.run.config.validation.validate_every
        if every and self.run.config.validation.validation_prompt and (step % every == 0 or last):
            _validate(self.run, step)


def _validate(run: Run, step: int) -> None:
    """Main process samples the validation prompts (EMA weights when kept); the others wait."""
    acc = run.accelerator
    if acc.is_main_process:
        from ldm_video.infer.pipeline import SamplingConfig
        from ldm_video.train.validate import write_validation_videos

        params = run.unwrapped.trainable_parameters()
        if run.ema is not None:
            run.ema.store(params)
            run.ema.copy_to(params)
        vae = run.validation_vae()
        try:
            with acc.autocast():  # fp32 temporal layers on bf16 / fp16 spatial weights, as in training
                c = run.config
                sampling = SamplingConfig(scheduler="ddim", steps=c.validation.validation_steps,
                                          guidance=c.validation.validation_guidance,
                                          noise_prior=c.objective.noise_prior, noise_alpha=c.objective.noise_alpha,
                                          height=run.resolution[0], width=run.resolution[1], seed=c.run.seed)
                paths = write_validation_videos(
                    run.unwrapped, vae, dict(run.noise_scheduler.config), list(c.validation.validation_prompt),
                    run.validation_embeds.to(acc.device), run.empty_text.to(acc.device),
                    Path(c.run.output_dir) / "validation", step, run.latent_frames(), sampling)
        finally:
            run.release_validation_vae(vae)
            if run.ema is not None:
                run.ema.restore(params)
        logger.info("validation videos: %s", ", ".join(str(p) for p in paths))
    acc.wait_for_everyone()


def train(config: TrainConfig, progress: bool = True) -> TrainResult:
    """Run (or resume) a training run described by `config`; returns what it did."""
    from ldm_video.base import check_base

    # a missing or unreachable base is said before the run folder is made
    check_base(config.model.base, config.model.base_variant)
    if config.data.data and not config.data.cache:
        from ldm_video.train.data import check_data_root

        check_data_root(config.data.data_config())  # so is a --data that is neither a folder nor a media file
    overwritten = check_output_dir(config.run.output_dir, config.run.resume, config.run.overwrite)
    resume_from = resume_point(config.run.resume, config.run.output_dir,
                               main_process=launcher_main_process())  # fails early
    from ldm_video.train.plan import check_clip_fits

    check_clip_fits(config)  # a clip too long for this machine's memory fails before any work too
    if config.data.images == "frame" and not config.temporal.lora_rank and launcher_main_process():
        logger.warning("--images frame: one-frame image samples skip the temporal layers, so without --lora-rank "
                       "their batches train nothing (zero gradients); use --images pseudo-video to train on images")
    from ldm_video.export import reach_note

    if reach_note(config.temporal.temporal_layers) and launcher_main_process():
        logger.warning("%s", reach_note(config.temporal.temporal_layers))
    run = setup_run(config, progress=progress)
    given = config.context.context_frames
    if given and given >= run.latent_frames():  # a causal VAE compresses time
        raise LdmVideoError(f"--context-frames {given} leaves none of the {run.latent_frames()} latent frames of a "
                            f"--frames {config.data.frames} clip to denoise (the causal --vae makes (F - 1) / 4 + 1); "
                            "use fewer")
    engine = config.run
    settings = LoopSettings(output_dir=engine.output_dir, max_steps=engine.max_steps, seed=engine.seed,
                            checkpoint_every=engine.checkpoint_every, keep_checkpoints=engine.keep_checkpoints,
                            max_grad_norm=engine.max_grad_norm, nan_patience=engine.nan_patience,
                            mixed_precision=engine.mixed_precision, progress=progress, desc="training",
                            clear_first=overwritten)
    return run_loop(TemporalJob(run), settings, resume_from)
