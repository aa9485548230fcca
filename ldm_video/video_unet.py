"""The video U-Net: a frozen SD 2.1 `UNet2DConditionModel` with temporal layers injected (SPEC §2).

Temporal attention follows AnimateDiff (Guo et al., 2023) in the diffusers `MotionAdapter` layout: one
motion module after every ResNet+Transformer pair of each down / up block (after the ResNet in blocks
without attention) and optionally in the mid block, so a trained module is a diffusers `MotionAdapter` as
it stands. Temporal convolutions follow VidRD (Gu et al., 2023): a residual Conv3d stack after every ResNet.
Both branches end in zero-initialised layers, so at initialisation the model is the image model run per
frame. One-frame inputs skip every temporal layer (joint image-video training, PYoCo / VDM). A block-causal
model (`context_causal`) keeps frames given as context from attending to the others (ldm_video.causal).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from diffusers import MotionAdapter, UNet2DConditionModel
from diffusers.models.unets.unet_motion_model import UNetMotionOutput
from einops import rearrange, repeat
from torch import nn

from ldm_video import causal
from ldm_video.causal import ContextCache
from ldm_video.config import VideoUNetConfig
from ldm_video.errors import LdmVideoError
from ldm_video.temporal import ClipSpan, FrameContext, TemporalConvStack, attach, detach, set_motion_norm

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # spatial attention projections only (SPEC §2)


def motion_adapter_for(unet_config, cfg: VideoUNetConfig) -> MotionAdapter:
    """A diffusers MotionAdapter shaped for a U-Net config, with every proj_out zeroed (identity at init)."""
    channels = tuple(unet_config["block_out_channels"])
    bad = [c for c in channels if c % cfg.attention_heads]
    if bad:
        raise ValueError(f"attention_heads={cfg.attention_heads} does not divide the U-Net channels {bad}")
    layers = unet_config["layers_per_block"]
    has_mid = unet_config.get("mid_block_type", "UNetMidBlock2DCrossAttn") is not None
    adapter = MotionAdapter(
        block_out_channels=channels,
        motion_layers_per_block=layers if isinstance(layers, int) else tuple(layers),
        motion_transformer_layers_per_block=cfg.attention_layers,
        motion_mid_block_layers_per_block=1,  # SD's UNetMidBlock2DCrossAttn has one attention
        motion_transformer_layers_per_mid_block=cfg.attention_layers,
        motion_num_attention_heads=cfg.attention_heads,
        motion_norm_num_groups=unet_config["norm_num_groups"],
        motion_max_seq_length=cfg.max_frames,
        use_motion_mid_block=cfg.mid_block and has_mid,
    )
    for name, module in adapter.named_modules():
        if name.endswith("proj_out"):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
    return adapter


def _blocks(unet: UNet2DConditionModel, adapter: MotionAdapter | None) -> Iterator[tuple[str, nn.Module, object]]:
    """(name, U-Net block, its MotionModules in the adapter or None) for the down, mid and up blocks."""
    for i, block in enumerate(unet.down_blocks):
        yield f"down_blocks.{i}", block, adapter.down_blocks[i] if adapter is not None else None
    if unet.mid_block is not None:
        yield "mid_block", unet.mid_block, adapter.mid_block if adapter is not None else None
    for i, block in enumerate(unet.up_blocks):
        yield f"up_blocks.{i}", block, adapter.up_blocks[i] if adapter is not None else None


@dataclass
class VideoClip:
    """One clip of a `VideoUNet.forward_clips` call: what `VideoUNet.forward` takes for a clip."""

    sample: torch.Tensor  # (b, c, f, h, w)
    timestep: torch.Tensor | float  # a scalar, one per clip (b,) or one per frame (b, f)
    encoder_hidden_states: torch.Tensor  # (b, seq, dim)
    given: torch.Tensor | None = None  # (b, f) bool: frames given as context (block-causal models)
    cache: ContextCache | None = None  # the given frames' keys and values (`VideoUNet.cache_context`)


class VideoUNet(nn.Module):
    """`model(latents (b,c,f,h,w), timestep, encoder_hidden_states (b,seq,dim)).sample` -> (b,c,f,h,w).

    `timestep` is a scalar, one per clip (b,), or one per frame (b, f). A block-causal model also takes `given`
    (b, f), the frames given as context, or a `ContextCache` of them (`cache_context`).
    """

    def __init__(self, unet: UNet2DConditionModel, config: VideoUNetConfig):
        super().__init__()
        self.config = config
        self.frames = FrameContext()
        unet.requires_grad_(False)  # the spatial image model stays frozen
        self.unet = unet
        self.motion = motion_adapter_for(unet.config, config) if config.use_attention else None
        if self.motion is not None:
            set_motion_norm(self.motion, config.motion_norm)
            if config.context_causal:
                causal.install(self.motion)
        self.temporal_convs = nn.ModuleDict()
        groups = unet.config.norm_num_groups
        for name, block, motion in _blocks(unet, self.motion):
            in_mid = name == "mid_block"
            has_attn = hasattr(block, "attentions") and block.attentions is not None and len(block.attentions) > 0
            for j, resnet in enumerate(block.resnets):
                temporal: list[nn.Module] = []
                if config.use_conv and (config.mid_block or not in_mid):
                    conv = TemporalConvStack(resnet.out_channels, config.conv_depth, config.conv_dropout, groups)
                    self.temporal_convs[f"{name}.resnets.{j}".replace(".", "_")] = conv
                    temporal.append(conv)
                if motion is not None and not has_attn:
                    temporal.append(motion.motion_modules[j])  # blocks without attention: after the ResNet
                attach(resnet, self.frames, tuple(temporal))
            if has_attn:
                for j, attn in enumerate(block.attentions):
                    attach(attn, self.frames, (motion.motion_modules[j],) if motion is not None else ())
        if not self.temporal_convs:
            self.temporal_convs = None
        self.lora_rank = 0
        if config.lora_rank > 0:
            self.add_lora(config.lora_rank, config.lora_alpha or float(config.lora_rank))

    # -- parameters -------------------------------------------------------------------------------------

    def add_lora(self, rank: int, alpha: float) -> None:
        """LoRA (peft) on the spatial attention projections of the U-Net; B starts at zero (identity)."""
        from peft import LoraConfig

        self.unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                         target_modules=LORA_TARGETS))
        self.lora_rank = rank

    def temporal_modules(self) -> dict[str, nn.Module]:
        """The modules this toolkit adds: {"motion": MotionAdapter, "temporal_convs": ModuleDict} (present ones)."""
        return {k: m for k, m in (("motion", self.motion), ("temporal_convs", self.temporal_convs)) if m is not None}

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Temporal parameters and LoRA; every other parameter is frozen."""
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    # -- switches ---------------------------------------------------------------------------------------

    def enable_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each ResNet(+temporal) and Transformer(+motion) unit in the backward pass."""
        self.frames.checkpointing = enabled

    def set_motion_scale(self, scale: float = 1.0) -> None:
        """Sample with every temporal layer's branch scaled: x + scale * branch(x) instead of x + branch(x)
        (AnimateDiff-Evolved's motion scale). 1 is the model as trained, 0 the image model run per frame; on the
        toy demo's models 1.5 made more short clips pace, but not long context videos (benchmarks/RESULTS.md,
        "Motion scale")."""
        if not math.isfinite(scale) or scale < 0:
            raise ValueError(f"motion scale must be a finite number >= 0, got {scale}")
        self.frames.motion_scale = float(scale)

    def set_attention_backend(self, backend: str = "sdpa") -> None:
        """"sdpa" (torch scaled_dot_product_attention, the default) or "xformers" (when installed)."""
        from diffusers.models.attention_processor import AttnProcessor2_0

        parts = [self.unet] + ([self.motion] if self.motion is not None else [])
        if backend == "xformers":
            if importlib.util.find_spec("xformers") is None:
                raise LdmVideoError("attention backend xformers asked for, but xformers is not installed "
                                    "(pip install 'ldm-video[cuda]')")
            for part in parts:
                part.enable_xformers_memory_efficient_attention()
        elif backend == "sdpa":
            for part in parts:  # every diffusers Attention, spatial and temporal (MotionAdapter has no setter)
                for module in part.modules():
                    if hasattr(module, "set_processor"):
                        module.set_processor(AttnProcessor2_0())
        else:
            raise LdmVideoError(f"unknown attention backend {backend!r}; choose sdpa or xformers")
        if self.config.context_causal:  # the temporal attention keeps its block-causal processor (torch sdpa)
            causal.install(self.motion)

    # -- forward ----------------------------------------------------------------------------------------

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        encoder_hidden_states: torch.Tensor,
        cross_attention_kwargs: dict | None = None,
        return_dict: bool = True,
        given: torch.Tensor | None = None,
        cache: ContextCache | None = None,
    ) -> UNetMotionOutput | tuple[torch.Tensor]:
        """`given` (b, f) bool: frames given as context, which attend only to each other (block-causal models).
        `cache`: `sample` holds only the given frames (recording) or only the frames after them (see
        `cache_context`)."""
        clip = VideoClip(sample, timestep, encoder_hidden_states, given, cache)
        out = self._run((clip,), cross_attention_kwargs)[0]  # (b, c, f, h, w)
        return UNetMotionOutput(sample=out) if return_dict else (out,)

    def forward_clips(self, clips: Sequence[VideoClip], cross_attention_kwargs: dict | None = None) -> list[torch.Tensor]:
        """Several clips, of any batch sizes and frame counts, in one U-Net call -> each one's prediction (b, c, f,
        h, w), as `forward` gives it for the clip alone (up to float rounding). The spatial layers run on all their
        frames as one batch and the temporal layers clip by clip, so a sampler whose guidance rows differ in their
        frames (history guidance without the given frames) pays one call's fixed cost, not one per clip.
        `cross_attention_kwargs` go to the spatial attention of every clip (a LoRA `scale`), as in `forward`."""
        if not clips:
            raise ValueError("forward_clips needs at least one clip")
        return self._run(tuple(clips), cross_attention_kwargs)

    def _run(self, clips: tuple[VideoClip, ...], cross_attention_kwargs: dict | None = None) -> list[torch.Tensor]:
        parts = [self._flatten(clip) for clip in clips]  # (x, text, t, span) each
        cat = (lambda xs: xs[0]) if len(parts) == 1 else torch.cat
        x, text, t = (cat([p[i] for p in parts]) for i in range(3))  # ((sum b f), ...)
        self.frames.clips = tuple(p[3] for p in parts)
        try:
            out = self.unet(x, t, text, cross_attention_kwargs=cross_attention_kwargs, return_dict=False)[0]
        finally:
            self.frames.clips = ()  # the bare U-Net is an image model again between calls
        outs = []
        for clip, (*_, span), part in zip(clips, parts, out.split([p[3].rows for p in parts])):
            if clip.cache is not None and clip.cache.recording:
                clip.cache.frames, clip.cache.recording = span.num_frames, False  # later calls run new frames
            outs.append(rearrange(part, "(b f) c h w -> b c f h w", f=span.num_frames))  # (b, c, f, h, w)
        return outs

    def _flatten(self, clip: VideoClip) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, ClipSpan]:
        """A clip -> its frames ((b f), c, h, w), text ((b f), seq, dim), timesteps ((b f),) and ClipSpan."""
        sample, given, cache = clip.sample, clip.given, clip.cache
        b, _, f, _, _ = sample.shape  # (b, c, f, h, w)
        if (given is not None or cache is not None) and not self.config.context_causal:
            raise ValueError("given frames and context caches need a block-causal model (context_causal)")
        positions = f + (cache.frames if cache is not None and not cache.recording else 0)
        if self.motion is not None and positions > self.config.max_frames:
            raise LdmVideoError(f"{positions} frames exceed the temporal attention's max_frames="
                                f"{self.config.max_frames}")
        x = rearrange(sample, "b c f h w -> (b f) c h w")  # spatial layers run per frame
        text = repeat(clip.encoder_hidden_states, "b s d -> (b f) s d", f=f)  # ((b f), seq, dim)
        t = torch.as_tensor(clip.timestep, device=sample.device)
        if t.ndim == 2:  # (b, f): a timestep per frame (clean context frames at t = 0, train --context-frames)
            if t.shape != (b, f):
                raise ValueError(f"per-frame timesteps must be (batch, frames) = ({b}, {f}), got {tuple(t.shape)}")
            t = rearrange(t, "b f -> (b f)")  # ((b f),)
        elif t.ndim == 1 and t.shape[0] == b:
            t = repeat(t, "b -> (b f)", f=f)  # ((b f),)
        else:
            t = t.expand(b * f)  # ((b f),): one timestep for every frame
        if given is not None and not bool(given.any()):
            given = None  # no frame given: plain attention, no mask
        kwargs = {"given": given, "cache": cache} if given is not None or cache is not None else None
        return x, text, t, ClipSpan(b * f, f, kwargs)

    @torch.no_grad()
    def cache_context(self, sample: torch.Tensor, timestep: torch.Tensor | float,
                      encoder_hidden_states: torch.Tensor) -> ContextCache:
        """Run the given frames (b, c, M, h, w) alone once and keep every temporal attention's keys and values:
        `model(new_frames, t, text, cache=...)` then equals the new frames of a full pass with `given` set."""
        cache = ContextCache()
        self(sample, timestep, encoder_hidden_states, cache=cache)
        return cache

    def remove_temporal_layers(self) -> UNet2DConditionModel:
        """Give back the plain spatial U-Net (with its LoRA, if any); this model is unusable afterwards."""
        for module in self.unet.modules():
            detach(module)
        return self.unet


def inflate_unet(unet2d: UNet2DConditionModel, config: VideoUNetConfig | None = None) -> VideoUNet:
    """Inject temporal layers into `unet2d` (taken over in place, spatial weights frozen) -> VideoUNet.

    The new layers take the U-Net's device and dtype; a trainer keeps fp32 master copies of them itself.
    """
    if not isinstance(unet2d, UNet2DConditionModel):
        raise TypeError(f"inflate_unet needs a diffusers UNet2DConditionModel, got {type(unet2d).__name__}")
    model = VideoUNet(unet2d, config or VideoUNetConfig())
    return model.to(device=model.device, dtype=model.dtype)  # new layers follow the U-Net's device and dtype
