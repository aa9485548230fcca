"""Temporal layers for a frozen image U-Net: VidRD's temporal convolutions (Gu et al., "Reuse and Diffuse",
2023) and the hooks that run AnimateDiff motion modules (Guo et al., 2023; diffusers `AnimateDiffTransformer3D`)
after the spatial layers.

The spatial blocks keep their class and parameter names; their instances are switched to the small
subclasses below, which run the original forward and then the temporal layers. Parameter names are thus
unchanged, so LoRA keys and base weights stay exactly those of diffusers' `UNet2DConditionModel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel, Transformer2DModelOutput
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint


class TemporalConvStack(nn.Module):
    """VidRD Temp-Conv: x + L x [GroupNorm, SiLU, Dropout, Conv3d (k,1,1)], last conv zero-initialised; after the
    video U-Net's ResNets (L 4) and the temporal-aware VAE decoder's (L 3). One frame passes through unchanged."""

    def __init__(self, channels: int, depth: int = 4, dropout: float = 0.1, norm_groups: int = 32,
                 kernel_frames: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [
                nn.GroupNorm(norm_groups, channels, eps=1e-6),
                nn.SiLU(),
                nn.Dropout(dropout),
                nn.Conv3d(channels, channels, kernel_size=(kernel_frames, 1, 1), padding=(kernel_frames // 2, 0, 0)),
            ]
        self.layers = nn.Sequential(*layers)
        nn.init.zeros_(self.layers[-1].weight)  # zero branch: identity at initialisation
        nn.init.zeros_(self.layers[-1].bias)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        if num_frames == 1:
            return x  # an image: no temporal context
        # contiguous: torch 2.13 GroupNorm backward can crash on this permuted 5D view when x needs no grad
        video = rearrange(x, "(b f) c h w -> b c f h w", f=num_frames).contiguous()  # (b, c, f, h, w)
        video = video + self.layers(video)
        return rearrange(video, "b c f h w -> (b f) c h w")  # ((b f), c, h, w)


class PerFrameGroupNorm(nn.GroupNorm):
    """GroupNorm of a (b, c, f, h, w) clip taken over each frame alone, as the original AnimateDiff motion module
    (and A1111 / ComfyUI) normalise; diffusers' AnimateDiffTransformer3D normalises over all frames at once.
    Same parameters as nn.GroupNorm, so a module's weights are unchanged by switching."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.shape[2]
        frames = rearrange(x, "b c f h w -> (b f) c h w")
        out = nn.functional.group_norm(frames, self.num_groups, self.weight, self.bias, self.eps)
        return rearrange(out, "(b f) c h w -> b c f h w", f=f)


def set_motion_norm(adapter: nn.Module, mode: str) -> None:
    """Switch the input GroupNorm of every motion module of a MotionAdapter to all-frames or per-frame."""
    cls = PerFrameGroupNorm if mode == "per-frame" else nn.GroupNorm
    for name, module in adapter.named_modules():
        if name.endswith(".norm") and isinstance(module, nn.GroupNorm):
            module.__class__ = cls


@dataclass(frozen=True)
class ClipSpan:
    """One clip of a U-Net call as its temporal layers see it: `rows` (b * f) consecutive rows of the call's
    flattened ((b f), c, h, w) batch, `num_frames` f frames each."""

    rows: int
    num_frames: int
    # keyword arguments for the motion modules' attention processors (block-causal context frames,
    # ldm_video.causal), or None
    attention_kwargs: dict | None = None


@dataclass
class FrameContext:
    """What the video U-Net's forward tells its temporal layers: the clips of the current call, in batch order.

    One call may hold several clips of different lengths (`VideoUNet.forward_clips`): the spatial layers run on all
    their frames at once, each temporal layer clip by clip."""

    clips: tuple[ClipSpan, ...] = ()  # () = image mode: every temporal layer is skipped
    checkpointing: bool = False  # recompute each spatial+temporal unit in the backward pass
    # strength of every temporal layer's branch, x + scale * branch(x) (`VideoUNet.set_motion_scale`): 1 as
    # trained, 0 the image model
    motion_scale: float = 1.0


def run_temporal(layers: tuple, hidden: torch.Tensor, clips: tuple[ClipSpan, ...], scale: float = 1.0) -> torch.Tensor:
    """Apply a block's temporal layers in order to ((b f), c, h, w) `hidden`, clip by clip; motion modules get a
    clip's `attention_kwargs` (when given). A one-frame clip skips them (an image), unless it runs against cached
    context frames (`attention_kwargs`). Every layer is residual, x + branch(x); `scale` != 1 makes it
    x + scale * branch(x)."""
    if not clips or scale == 0.0:  # scale 0: x + 0 * branch(x) = x, so the branches' work is skipped
        return hidden
    if len(clips) == 1:
        return _run_clip(layers, hidden, clips[0], scale)
    parts = hidden.split([clip.rows for clip in clips])  # ((b_i f_i), c, h, w) each
    return torch.cat([_run_clip(layers, part, clip, scale) for part, clip in zip(parts, clips)])


def _run_clip(layers: tuple, hidden: torch.Tensor, clip: ClipSpan, scale: float) -> torch.Tensor:
    if clip.num_frames == 1 and clip.attention_kwargs is None:
        return hidden
    for layer in layers:
        if clip.attention_kwargs is not None and not isinstance(layer, TemporalConvStack):
            out = layer(hidden, num_frames=clip.num_frames, cross_attention_kwargs=clip.attention_kwargs)
        else:
            out = layer(hidden, num_frames=clip.num_frames)
        hidden = out if scale == 1.0 else hidden + scale * (out - hidden)
    return hidden


class VideoResnetBlock2D(ResnetBlock2D):
    """A ResnetBlock2D followed by an optional temporal-conv stack (its parameters live in the video U-Net)."""

    _ldm_frames: FrameContext
    _ldm_temporal: tuple  # (TemporalConvStack,) or (): held in a tuple so it is not registered here

    def _video_forward(self, input_tensor: torch.Tensor, temb: torch.Tensor | None,
                       clips: tuple[ClipSpan, ...]) -> torch.Tensor:
        hidden = ResnetBlock2D.forward(self, input_tensor, temb)  # ((b f), c, h, w)
        return run_temporal(self._ldm_temporal, hidden, clips, self._ldm_frames.motion_scale)

    def forward(self, input_tensor: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        """What diffusers' U-Net blocks pass, `(hidden_states, temb)`; ResnetBlock2D's other arguments (the
        deprecated `scale`, which it ignores) are refused (TypeError) rather than dropped."""
        clips = self._ldm_frames.clips  # read now: a recomputation in backward runs after forward reset them
        if self._ldm_frames.checkpointing and torch.is_grad_enabled():
            return checkpoint(self._video_forward, input_tensor, temb, clips, use_reentrant=False)
        return self._video_forward(input_tensor, temb, clips)


class VideoTransformer2DModel(Transformer2DModel):
    """A spatial Transformer2DModel followed by an optional AnimateDiff motion module."""

    _ldm_frames: FrameContext
    _ldm_temporal: tuple  # (AnimateDiffTransformer3D,) or ()

    def _video_forward(self, hidden_states: torch.Tensor, kwargs: dict, clips: tuple[ClipSpan, ...]) -> torch.Tensor:
        out = Transformer2DModel.forward(self, hidden_states, **kwargs, return_dict=False)[0]  # ((b f), c, h, w)
        return run_temporal(self._ldm_temporal, out, clips, self._ldm_frames.motion_scale)

    def forward(self, hidden_states: torch.Tensor, *args, return_dict: bool = True, **kwargs):
        if args:
            raise TypeError("VideoTransformer2DModel takes its inputs after hidden_states by keyword")
        clips = self._ldm_frames.clips
        if self._ldm_frames.checkpointing and torch.is_grad_enabled():
            out = checkpoint(self._video_forward, hidden_states, kwargs, clips, use_reentrant=False)
        else:
            out = self._video_forward(hidden_states, kwargs, clips)
        return Transformer2DModelOutput(sample=out) if return_dict else (out,)


VIDEO_CLASSES: dict[type, type] = {
    ResnetBlock2D: VideoResnetBlock2D,
    Transformer2DModel: VideoTransformer2DModel,
}


def attach(module: nn.Module, frames: FrameContext, temporal: tuple[nn.Module, ...]) -> None:
    """Switch a spatial block to its video subclass and give it its temporal layers (not registered in it)."""
    cls = type(module)
    if cls in VIDEO_CLASSES.values():
        raise ValueError(f"{cls.__name__} already carries temporal layers: the U-Net was inflated twice")
    if cls not in VIDEO_CLASSES:
        raise TypeError(f"cannot inflate a {cls.__name__}; SD 2.x U-Nets hold ResnetBlock2D and Transformer2DModel")
    module.__class__ = VIDEO_CLASSES[cls]
    module._ldm_frames = frames
    module._ldm_temporal = tuple(temporal)


def detach(module: nn.Module) -> None:
    """Undo `attach`: the block is a plain spatial block again."""
    for spatial, video in VIDEO_CLASSES.items():
        if type(module) is video:
            module.__class__ = spatial
            del module._ldm_frames, module._ldm_temporal
