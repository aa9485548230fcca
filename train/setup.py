"""Assembling a training run from a TrainConfig: accelerator, data, frozen base parts, video U-Net,
optimiser, LR schedule and EMA. The loop itself is in `ldm_video.train.trainer`.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ldm_video.device import PRECISION_DTYPES
from ldm_video.errors import CheckpointMismatchError, LdmVideoError
from ldm_video.train.config import TrainConfig
from ldm_video.train.data import (
    ClipBatchSampler,
    VideoFolderDataset,
    bucket_keys,
    collate,
    image_flags,
)
from ldm_video.train.engine import build_accelerator, start_trackers
from ldm_video.train.transforms import parse_resolution

logger = logging.getLogger("ldm_video.train")

WEIGHT_DTYPES = PRECISION_DTYPES  # --mixed-precision -> frozen-weight dtype (ldm_video.device's one table)


@dataclass
class Run:
    """The live objects of a training run."""

    config: TrainConfig
    accelerator: object  # accelerate.Accelerator
    base: object  # BaseModel (vae / text_encoder / tokenizer None when training from a cache)
    model: torch.nn.Module  # VideoUNet, wrapped by accelerate (DDP with several processes)
    unwrapped: torch.nn.Module  # the VideoUNet itself
    optimizer: object
    lr_scheduler: object
    ema: object | None  # diffusers EMAModel
    sampler: ClipBatchSampler
    loader: DataLoader
    noise_scheduler: object  # the base's DDPMScheduler (training noise schedule)
    prediction_type: str  # "epsilon" or "v_prediction", from the base's scheduler config
    weight_dtype: torch.dtype  # of the frozen weights
    resolution: tuple[int, int]
    empty_text: torch.Tensor  # (seq, dim) embedding of "" (caption dropout, negative prompt)
    validation_embeds: torch.Tensor | None  # (n, seq, dim) of the validation prompts
    clip_fps: float | None = None  # frame rate of the training clips (recorded for generate's --fps default)

    def encode_video(self, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from ldm_video.train.encode import encode_video

        return encode_video(self.base.vae, pixels, generator)  # (b, 4, f, h, w)

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        from ldm_video.text import encode_prompts

        return encode_prompts(self.base.tokenizer, self.base.text_encoder, prompts)  # (b, seq, dim)

    def save_weights(self, out_dir: Path, use_ema: bool, step: int | None = None) -> Path:
        """save_temporal of the trained layers (the EMA weights when use_ema) with the run's facts."""
        from ldm_video.checkpoint import save_temporal

        cfg = self.config
        metadata = {"num_frames": cfg.data.frames, "resolution": f"{self.resolution[0]}x{self.resolution[1]}",
                    "noise_prior": cfg.objective.noise_prior, "noise_alpha": cfg.objective.noise_alpha,
                    "prediction_type": self.prediction_type, "ema": bool(use_ema), "base": cfg.model.base,
                    "context_frames": cfg.context.context_frames, "context_noise": cfg.context.context_noise,
                    "clip_frames": self.latent_frames()}
        if cfg.context.context_frames:
            metadata["context_prob"] = cfg.context.prob
        if self.clip_fps:
            metadata["fps"] = round(self.clip_fps, 3)
        if step is not None:
            metadata["step"] = step
        params = self.unwrapped.trainable_parameters()
        if use_ema:
            self.ema.store(params)
            self.ema.copy_to(params)
        try:
            return save_temporal(self.unwrapped, out_dir, metadata=metadata)
        finally:
            if use_ema:
                self.ema.restore(params)

    def validation_vae(self):
        """The VAE for decoding validation videos (loaded for the occasion when training from a cache)."""
        if self.base.vae is not None:
            return self.base.vae
        return training_vae(self.config, self.weight_dtype, self.accelerator.device)

    def latent_frames(self) -> int:
        """Frames the U-Net sees per clip: --frames, or (F - 1) / 4 + 1 with a causal 3D --vae."""
        if self.config.model.vae is None:
            return self.config.data.frames
        from ldm_video.vae.causal3d import KIND as CAUSAL3D
        from ldm_video.vae.checkpoint import is_video_vae_folder, read_config

        vae = self.config.model.vae
        if is_video_vae_folder(vae) and read_config(vae).get("kind") == CAUSAL3D:
            return (self.config.data.frames - 1) // 4 + 1  # 4x temporal compression: 4f+1 frames -> f+1 latents
        return self.config.data.frames

    def release_validation_vae(self, vae) -> None:
        if vae is not self.base.vae:
            del vae
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def training_vae(config: TrainConfig, dtype: torch.dtype, device):
    """The frozen VAE clips are encoded with: --vae (a train-vae folder), else the base's own, as a VideoVAE.

    Raises LdmVideoError when --frames does not fit it (a causal 3D VAE needs 4f+1 frames).
    """
    from ldm_video.vae import load_video_vae

    model = config.model
    vae = load_video_vae(model.vae or model.base, base=model.base, dtype=dtype, device=device,
                         variant=model.base_variant)
    vae.check_num_frames(config.data.frames, what="--frames")
    return vae


def _dataset(config: TrainConfig, accelerator, base_name: str, progress: bool = True):
    """(dataset, collate function, image flags, bucket keys) from --cache, --cache-latents or --data."""
    from ldm_video.train.cache import LatentCacheDataset, collate_cached, prepare_cache, read_cache_index

    cache = config.data.cache
    if config.data.cache_latents and not cache:
        cache = str(Path(config.run.output_dir) / "latent-cache")
        if accelerator.is_main_process and not (Path(cache) / "index.json").exists():
            from ldm_video.base import load_base

            base = load_base(base_name, ("text_encoder", "tokenizer"), WEIGHT_DTYPES[config.run.mixed_precision],
                             accelerator.device, variant=config.model.base_variant)
            base.vae = training_vae(config, WEIGHT_DTYPES[config.run.mixed_precision], accelerator.device)
            prepare_cache(base, config.data.data_config(), cache, seed=config.run.seed, vae_name=config.model.vae,
                          progress=progress)
            del base
            gc.collect()
        accelerator.wait_for_everyone()
    if cache:
        index = read_cache_index(cache)
        want = list(parse_resolution(config.data.resolution))
        if index["frames"] != config.data.frames or index["resolution"] != want:
            raise LdmVideoError(f"{cache}: cache holds {index['frames']}-frame clips at "
                                f"{index['resolution'][0]}x{index['resolution'][1]}, but --frames "
                                f"{config.data.frames} --resolution {config.data.resolution} were asked for")
        made = {k: index.get(k) for k in ("frame_stride", "fps", "crop", "images", "buckets", "vae")}
        data = config.data
        asked = {"frame_stride": data.frame_stride, "fps": data.fps, "crop": data.crop, "images": data.images,
                 "buckets": data.buckets, "vae": config.model.vae}
        if not _same_source(index.get("base"), config.model.base):
            made["base"], asked["base"] = index.get("base"), config.model.base
        if data.cache_latents and not data.cache and not _same_source(index.get("data"), data.data):
            made["data"], asked["data"] = index.get("data"), data.data  # OUTPUT_DIR/latent-cache of another run
        differ = [f"--{k.replace('_', '-')} {made[k]} (asked {asked[k]})" for k in made if made[k] != asked[k]]
        if differ:
            raise LdmVideoError(f"{cache}: cache was made with " + ", ".join(differ) +
                                "; pass the same settings, or prepare a new cache (delete this one)")
        dataset = LatentCacheDataset(cache)
        return dataset, collate_cached, dataset.is_image(), dataset.bucket_keys()
    dataset = VideoFolderDataset(config.data.data_config())
    return dataset, collate, image_flags(dataset), bucket_keys(dataset)


def _same_source(recorded: str | None, given: str | None) -> bool:
    """Whether a cache's recorded base / data folder is the one given (paths compared resolved)."""
    if recorded is None or given is None:
        return recorded == given or recorded is None  # caches older than the field recorded nothing
    if Path(recorded).exists() and Path(given).exists():
        return Path(recorded).resolve() == Path(given).resolve()
    return recorded == given


def _init_motion(config: TrainConfig, unet_config, wanted, prediction_type: str):
    """--init-motion: the module's MotionAdapter tensors, and the temporal config with its attention layout."""
    from ldm_video.checkpoint import read_motion_module

    state, found = read_motion_module(config.model.init_motion, unet_config, prediction_type)
    taken = dataclasses.replace(wanted, attention_heads=found.attention_heads,
                                attention_layers=found.attention_layers, mid_block=found.mid_block)
    logger.info("--init-motion %s: %d heads, %d transformer layer(s) per module, mid block %s",
                config.model.init_motion, taken.attention_heads, taken.attention_layers,
                "yes" if taken.mid_block else "no")
    if found.motion_norm != wanted.motion_norm:
        logger.warning("--init-motion %s was made for %s GroupNorm; training with --motion-norm %s",
                       config.model.init_motion, found.motion_norm, wanted.motion_norm)
    return state, taken


def _load_init_motion(model, state: dict, source: str) -> None:
    """Copy a motion module into the model's temporal attention; frame positions are rebuilt for max_frames."""
    state = {k: v for k, v in state.items() if not k.endswith("pos_embed.pe")}
    result = model.motion.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("pos_embed.pe")]
    if missing or result.unexpected_keys:
        raise CheckpointMismatchError(f"{source}: motion module does not fit (missing {missing[:2]}, "
                                      f"unexpected {result.unexpected_keys[:2]})")


def setup_run(config: TrainConfig, progress: bool = True) -> Run:
    """Everything a training run needs, on the accelerator's device."""
    from accelerate.utils import set_seed

    from ldm_video import inflate_unet
    from ldm_video.base import load_base
    from ldm_video.train.optim import build_ema, build_lr_scheduler, build_optimizer

    one_frame_batches = config.data.images == "frame"
    accelerator = build_accelerator(config.run, find_unused_parameters=one_frame_batches)
    if accelerator.distributed_type.name in ("FSDP", "DEEPSPEED", "MEGATRON_LM"):
        # checkpoints and the saved layers are read from full, unsharded weights on the main process
        raise LdmVideoError(f"{accelerator.distributed_type.name} is not supported by ldm-video train yet; "
                            "use data parallelism (accelerate launch --multi_gpu --num_processes N)")
    if not accelerator.is_main_process:
        logging.getLogger("ldm_video").setLevel(logging.ERROR)  # one copy of each warning
    weight_dtype = WEIGHT_DTYPES[config.run.mixed_precision]
    dataset, collate_fn, flags, buckets = _dataset(config, accelerator, config.model.base, progress)
    cached = not isinstance(dataset, VideoFolderDataset)
    parts = ("unet", "scheduler") if cached else ("unet", "scheduler", "text_encoder", "tokenizer")
    base = load_base(config.model.base, parts, weight_dtype, accelerator.device, variant=config.model.base_variant)
    text_width, latent_channels = base.unet.config.cross_attention_dim, base.unet.config.in_channels
    if cached and (dataset.empty_text.shape[-1] != text_width or dataset.latent_channels() != latent_channels):
        raise LdmVideoError(f"{config.data.cache or Path(config.run.output_dir) / 'latent-cache'}: cache holds "
                            f"{dataset.latent_channels()}-channel latents and {dataset.empty_text.shape[-1]}-wide "
                            f"text, the U-Net of {config.model.base} takes {latent_channels} and {text_width}; it was "
                            "made with another base")
    if not cached:
        base.vae = training_vae(config, weight_dtype, accelerator.device)

    # text: the empty caption (dropout, negative prompt) and the validation prompts
    prompts = list(config.validation.validation_prompt) if config.validation.validate_every else []
    if cached:
        empty_text = dataset.empty_text
        validation_embeds = None
        if prompts:
            enc = load_base(config.model.base, ("text_encoder", "tokenizer"), weight_dtype, accelerator.device,
                            variant=config.model.base_variant)
            from ldm_video.text import encode_prompts

            validation_embeds = encode_prompts(enc.tokenizer, enc.text_encoder, prompts).cpu()
            del enc
            gc.collect()
    else:
        from ldm_video.text import encode_prompts

        empty_text = encode_prompts(base.tokenizer, base.text_encoder, [""])[0].cpu()  # (seq, dim)
        validation_embeds = encode_prompts(base.tokenizer, base.text_encoder, prompts).cpu() if prompts else None

    # the video U-Net: identical initial temporal weights on every process
    set_seed(config.run.seed)
    unet_config = config.video_unet_config()
    init_state = None
    if config.model.init_motion:
        init_state, unet_config = _init_motion(config, base.unet.config, unet_config, base.prediction_type)
    try:
        model = inflate_unet(base.unet, unet_config)
    except ValueError as err:
        raise LdmVideoError(f"{config.model.base}: {err}") from None
    if init_state is not None:
        _load_init_motion(model, init_state, config.model.init_motion)
    base.unet = None  # owned by the model now
    for module in model.temporal_modules().values():
        module.float()  # fp32 temporal weights and buffers (frame positions), whatever the frozen weights' dtype
    for p in model.trainable_parameters():
        p.data = p.data.float()  # LoRA too: fp32 master weights
    if config.model.attention_backend != "sdpa":  # sdpa is diffusers' default processor already
        model.set_attention_backend(config.model.attention_backend)
    if config.run.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    params = model.trainable_parameters()
    optimizer = build_optimizer(params, config.optimiser.optimizer, config.run.lr, config.run.weight_decay)
    lr_scheduler = build_lr_scheduler(optimizer, config.run.lr_scheduler, config.run.lr_warmup_steps,
                                      config.run.max_steps)
    ema = build_ema(params, config.optimiser.ema_decay) if config.optimiser.ema else None
    prepared_model, optimizer = accelerator.prepare(model, optimizer)
    if ema is not None:
        ema.to(accelerator.device)
    set_seed(config.run.seed + accelerator.process_index)  # each process its own dropout stream

    sampler = ClipBatchSampler(flags, config.run.batch_size, config.data.image_share, config.run.seed,
                               num_replicas=accelerator.num_processes, rank=accelerator.process_index,
                               groups=buckets)
    # its own generator: creating an iterator draws a worker seed, which must not touch the global RNG
    # (that would make the dropout masks depend on where a run was resumed)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn, num_workers=config.run.num_workers,
                        generator=torch.Generator().manual_seed(config.run.seed))
    start_trackers(accelerator, "ldm-video-train", config.to_dict())  # TensorBoard, when installed
    return Run(config=config, accelerator=accelerator, base=base, model=prepared_model, unwrapped=model,
               optimizer=optimizer, lr_scheduler=lr_scheduler, ema=ema, sampler=sampler, loader=loader,
               noise_scheduler=base.scheduler, prediction_type=base.prediction_type, weight_dtype=weight_dtype,
               resolution=parse_resolution(config.data.resolution), empty_text=empty_text,
               validation_embeds=validation_embeds, clip_fps=dataset.clip_fps())
