"""Causal 3D layers inflated from the SD VAE's 2D ones (CogVideoX / Open-Sora-Plan causal VAE; SPEC §5).

- `CausalConv3d`: a Conv2d becomes a Conv3d with temporal kernel 3; the input is padded with 2 frames
  *before* it (copies of the first frame, or the cached last 2 input frames of the previous chunk), none
  after, so frame t only sees frames <= t. "Tail" initialisation puts the 2D kernel in the last temporal tap
  and zeros in the others: at initialisation the layer is the 2D conv applied frame by frame.
- Norms and the mid-block attention run per frame (frames folded into the batch), which keeps the whole
  network causal, so chunked processing with the conv cache equals one-shot processing.
- Temporal down-sampling keeps frame 0 and averages the remaining frames in pairs; temporal up-sampling keeps
  frame 0 and repeats the rest twice, the mirror image.

Every layer takes `cache`: None for one-shot processing, or a dict carried from chunk to chunk (each layer
stores what it needs under its `cache_key`; a missing key means "this chunk holds frame 0").
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn
from torch.utils.checkpoint import checkpoint

Cache = dict[str, torch.Tensor]


def per_frame(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2D module to every frame of (b, c, f, h, w)."""
    b = x.shape[0]
    y = module(rearrange(x, "b c f h w -> (b f) c h w"))  # ((b f), c', h', w')
    return rearrange(y, "(b f) c h w -> b c f h w", b=b)


def tail_inflate(weight2d: torch.Tensor, kernel_frames: int) -> torch.Tensor:
    """(out, in, kh, kw) -> (out, in, kt, kh, kw) with the 2D kernel in the last temporal tap, zeros before."""
    w = weight2d.new_zeros(weight2d.shape[:2] + (kernel_frames,) + weight2d.shape[2:])
    w[:, :, -1] = weight2d
    return w


class CausalConv3d(nn.Module):
    """Conv3d over (b, c, f, h, w), causal in time: pads `kernel_frames - 1` frames before, none after."""

    cache_key: str = ""

    def __init__(self, conv2d: nn.Conv2d, kernel_frames: int = 3):
        super().__init__()
        if conv2d.padding_mode != "zeros" or conv2d.groups != 1 or conv2d.dilation != (1, 1):
            raise ValueError("only plain zero-padded Conv2d layers can be inflated")
        self.pad_frames = kernel_frames - 1
        self.conv = nn.Conv3d(
            conv2d.in_channels, conv2d.out_channels, (kernel_frames,) + tuple(conv2d.kernel_size),
            stride=(1,) + tuple(conv2d.stride), padding=(0,) + tuple(conv2d.padding),
            bias=conv2d.bias is not None,
        ).to(device=conv2d.weight.device, dtype=conv2d.weight.dtype)
        with torch.no_grad():
            self.conv.weight.copy_(tail_inflate(conv2d.weight, kernel_frames))  # tail initialisation
            if conv2d.bias is not None:
                self.conv.bias.copy_(conv2d.bias)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        if self.pad_frames == 0:
            return self.conv_taps(x)
        if cache is not None and self.cache_key in cache:
            front = cache[self.cache_key]  # (b, c, 2, h, w): last input frames of the previous chunk
        else:
            front = repeat(x[:, :, :1], "b c 1 h w -> b c k h w", k=self.pad_frames)  # first frame, repeated
        x = torch.cat([front, x], dim=2)  # (b, c, 2 + f, h, w)
        if cache is not None:
            cache[self.cache_key] = x[:, :, -self.pad_frames:].detach()
        return self.conv_taps(x)

    def conv_taps(self, x: torch.Tensor) -> torch.Tensor:
        """The valid Conv3d over padded (b, c, k-1+f, h, w), as a sum of one Conv2d per temporal tap.

        Same maths as `F.conv3d`; summing per-tap 2D convolutions (the last tap, which holds the 2D kernel,
        first) keeps a tail-initialised layer bit-identical to the 2D conv it came from.
        """
        k, num_frames = self.pad_frames + 1, x.shape[2] - self.pad_frames
        w, conv = self.conv.weight, self.conv

        def tap(i: int, bias: torch.Tensor | None) -> torch.Tensor:
            frames = rearrange(x[:, :, i:i + num_frames], "b c f h w -> (b f) c h w")
            return F.conv2d(frames, w[:, :, i], bias, conv.stride[1:], conv.padding[1:])  # ((b f), c', h', w')

        y = tap(k - 1, conv.bias)
        for i in range(k - 1):
            y = y + tap(i, None)
        return rearrange(y, "(b f) c h w -> b c f h w", f=num_frames)


def _first_chunk(module: nn.Module, x: torch.Tensor, cache: Cache | None) -> bool:
    """True when this chunk holds frame 0 (always in one-shot mode); marks the cache afterwards."""
    if cache is None:
        return True
    first = module.cache_key not in cache
    cache[module.cache_key] = x.new_zeros(0)
    return first


def temporal_down(x: torch.Tensor, first: bool) -> torch.Tensor:
    """Keep frame 0 (when the chunk holds it) and average the remaining frames in pairs."""
    head, rest = (x[:, :, :1], x[:, :, 1:]) if first else (x[:, :, :0], x)
    if rest.shape[2] % 2:
        raise ValueError(f"temporal down-sampling needs an even number of frames after frame 0, got {rest.shape[2]}")
    pairs = rearrange(rest, "b c (f two) h w -> b c f two h w", two=2).mean(dim=3)  # (b, c, f/2, h, w)
    return torch.cat([head, pairs], dim=2)


def temporal_up(x: torch.Tensor, first: bool) -> torch.Tensor:
    """Keep frame 0 (when the chunk holds it) and repeat every other frame twice in time."""
    head, rest = (x[:, :, :1], x[:, :, 1:]) if first else (x[:, :, :0], x)
    return torch.cat([head, repeat(rest, "b c f h w -> b c (f two) h w", two=2)], dim=2)


class CausalResnet(nn.Module):
    """diffusers ResnetBlock2D (no time embedding) with causal 3D convs and per-frame GroupNorm."""

    def __init__(self, resnet: nn.Module, kernel_frames: int):
        super().__init__()
        if resnet.time_emb_proj is not None or resnet.upsample is not None or resnet.downsample is not None:
            raise ValueError("only SD VAE ResNet blocks (no time embedding, no resampling) can be inflated")
        self.norm1 = copy.deepcopy(resnet.norm1)
        self.conv1 = CausalConv3d(resnet.conv1, kernel_frames)
        self.norm2 = copy.deepcopy(resnet.norm2)
        self.dropout = nn.Dropout(resnet.dropout.p)
        self.conv2 = CausalConv3d(resnet.conv2, kernel_frames)
        self.shortcut = CausalConv3d(resnet.conv_shortcut, kernel_frames) if resnet.conv_shortcut is not None else None
        self.output_scale_factor = float(resnet.output_scale_factor)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        h = F.silu(per_frame(self.norm1, x))
        h = self.conv1(h, cache)  # (b, c_out, f, h, w)
        h = self.dropout(F.silu(per_frame(self.norm2, h)))
        h = self.conv2(h, cache)
        skip = self.shortcut(x, cache) if self.shortcut is not None else x
        return (skip + h) / self.output_scale_factor


class FrameAttention(nn.Module):
    """The VAE mid-block spatial self-attention (diffusers `Attention`), run on each frame separately."""

    def __init__(self, attention: nn.Module):
        super().__init__()
        self.attention = copy.deepcopy(attention)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        return per_frame(self.attention, x)


class CausalDownsample(nn.Module):
    """diffusers Downsample2D (pad right/bottom, 3x3 stride 2) inflated; optionally halves time too."""

    cache_key: str = ""

    def __init__(self, down: nn.Module, kernel_frames: int, temporal: bool):
        super().__init__()
        self.pad = (0, 1, 0, 1) if down.padding == 0 else None
        self.conv = CausalConv3d(down.conv, kernel_frames)
        self.temporal = temporal  # True: also compress time 2x

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)  # pads (w, h) like Downsample2D
        x = self.conv(x, cache)  # (b, c, f, h/2, w/2)
        return temporal_down(x, _first_chunk(self, x, cache)) if self.temporal else x


class CausalUpsample(nn.Module):
    """diffusers Upsample2D (nearest 2x, 3x3 conv) inflated; optionally doubles time first (mirror of down)."""

    cache_key: str = ""

    def __init__(self, up: nn.Module, kernel_frames: int, temporal: bool):
        super().__init__()
        if getattr(up, "use_conv_transpose", False) or not getattr(up, "use_conv", True):
            raise ValueError("only nearest + conv Upsample2D layers can be inflated")
        self.conv = CausalConv3d(up.conv, kernel_frames)
        self.temporal = temporal  # True: also expand time 2x

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        if self.temporal:
            x = temporal_up(x, _first_chunk(self, x, cache))  # (b, c, 1 + 2(f-1), h, w) or (b, c, 2f, h, w)
        x = repeat(x, "b c f h w -> b c f (h s) (w t)", s=2, t=2)  # nearest 2x, as F.interpolate
        return self.conv(x, cache)


class CausalBlock(nn.Module):
    """A sequence of causal layers (resnets, attention, resampler) called with the same cache."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.gradient_checkpointing = False  # recompute activations in backward (one-shot training only)

    def _run(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, cache)
        return x

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        if self.gradient_checkpointing and cache is None and torch.is_grad_enabled():
            return checkpoint(self._run, x, use_reentrant=False)
        return self._run(x, cache)


def name_cache_keys(model: nn.Module) -> None:
    """Give every cache-using layer its module path as `cache_key` (unique within the model)."""
    for name, module in model.named_modules():
        if isinstance(module, (CausalConv3d, CausalDownsample, CausalUpsample)):
            module.cache_key = name
