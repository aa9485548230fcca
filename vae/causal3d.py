"""3D causal VAE inflated from the SD VAE (CogVideoX, Yang et al. 2024; Open-Sora-Plan's CausalVAE; SPEC §5).

Every Conv2d of the SD `AutoencoderKL` becomes a causal Conv3d (temporal kernel 3, tail initialisation,
see `causal_layers`); two temporal down-sampling stages in the encoder (after the spatial down-sampling of
its first two blocks) and the mirror up-sampling stages in the decoder (its last two up blocks) compress time
4x: `4f+1` frames <-> `f+1` latent frames, still 4 latent channels and 8x spatial, so the SD U-Net applies.
At initialisation a single image, and every frame of a static video, encodes and decodes exactly as with the
2D VAE. Long videos are encoded and decoded in chunks with a causal conv cache (the last 2 input frames of
every causal conv carried to the next chunk), so memory is constant in length and chunked == one-shot.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ldm_video.errors import CheckpointMismatchError, LdmVideoError
from ldm_video.vae.causal_layers import (
    Cache,
    CausalBlock,
    CausalConv3d,
    CausalDownsample,
    CausalResnet,
    CausalUpsample,
    FrameAttention,
    name_cache_keys,
    per_frame,
)
from ldm_video.vae.checkpoint import (
    arch_config,
    check_arch,
    load_state_strict,
    read_config,
    read_weights,
    save_folder,
)
from ldm_video.vae.interface import VideoVAE, frame_chunks

KIND = "causal3d"


@dataclass(frozen=True)
class CausalVAEConfig:
    """How the SD VAE is inflated."""

    kernel_frames: int = 3  # temporal kernel of every causal Conv3d (pads kernel_frames - 1 frames before)
    temporal_down_blocks: tuple[int, ...] = (0, 1)  # encoder blocks whose down-sampler also halves time
    encode_chunk_frames: int = 16  # default pixel frames per encode chunk after the first (multiple of 4)
    decode_chunk_frames: int = 4  # default latent frames per decode chunk

    @property
    def temporal_compression(self) -> int:
        return 2 ** len(self.temporal_down_blocks)


def _mid(mid: nn.Module, kernel_frames: int) -> CausalBlock:
    layers: list[nn.Module] = [CausalResnet(mid.resnets[0], kernel_frames)]
    for attn, resnet in zip(mid.attentions, mid.resnets[1:]):
        if attn is not None:
            layers.append(FrameAttention(attn))
        layers.append(CausalResnet(resnet, kernel_frames))
    return CausalBlock(layers)


class CausalEncoder(nn.Module):
    """diffusers `Encoder` + `quant_conv`, inflated: (b, 3, 4f+1, H, W) -> moments (b, 8, f+1, h, w)."""

    def __init__(self, vae: nn.Module, cfg: CausalVAEConfig):
        super().__init__()
        enc, k = vae.encoder, cfg.kernel_frames
        self.conv_in = CausalConv3d(enc.conv_in, k)
        blocks = []
        for i, block in enumerate(enc.down_blocks):
            layers: list[nn.Module] = [CausalResnet(r, k) for r in block.resnets]
            if block.downsamplers is not None:
                layers.append(CausalDownsample(block.downsamplers[0], k, temporal=i in cfg.temporal_down_blocks))
            blocks.append(CausalBlock(layers))
        self.blocks = nn.ModuleList(blocks)
        self.mid = _mid(enc.mid_block, k)
        self.norm_out = nn.GroupNorm(enc.conv_norm_out.num_groups, enc.conv_norm_out.num_channels,
                                     eps=enc.conv_norm_out.eps)
        self.norm_out.load_state_dict(enc.conv_norm_out.state_dict())
        self.conv_out = CausalConv3d(enc.conv_out, k)
        self.quant_conv = CausalConv3d(vae.quant_conv, k) if vae.quant_conv is not None else None

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        x = self.conv_in(x, cache)  # (b, c, F, H, W)
        for block in self.blocks:
            x = block(x, cache)  # time halves in the first two blocks
        x = self.mid(x, cache)  # (b, c, f, h, w)
        x = self.conv_out(F.silu(per_frame(self.norm_out, x)), cache)  # (b, 8, f, h, w)
        return self.quant_conv(x, cache) if self.quant_conv is not None else x


class CausalDecoder(nn.Module):
    """`post_quant_conv` + diffusers `Decoder`, inflated: (b, 4, f+1, h, w) -> (b, 3, 4f+1, H, W)."""

    def __init__(self, vae: nn.Module, cfg: CausalVAEConfig):
        super().__init__()
        dec, k = vae.decoder, cfg.kernel_frames
        n = len(dec.up_blocks)
        temporal_up = {n - 2 - i for i in cfg.temporal_down_blocks}  # up block n-2-i undoes encoder block i
        self.post_quant_conv = CausalConv3d(vae.post_quant_conv, k) if vae.post_quant_conv is not None else None
        self.conv_in = CausalConv3d(dec.conv_in, k)
        self.mid = _mid(dec.mid_block, k)
        blocks = []
        for i, block in enumerate(dec.up_blocks):
            layers: list[nn.Module] = [CausalResnet(r, k) for r in block.resnets]
            if block.upsamplers is not None:
                layers.append(CausalUpsample(block.upsamplers[0], k, temporal=i in temporal_up))
            blocks.append(CausalBlock(layers))
        self.blocks = nn.ModuleList(blocks)
        self.norm_out = nn.GroupNorm(dec.conv_norm_out.num_groups, dec.conv_norm_out.num_channels,
                                     eps=dec.conv_norm_out.eps)
        self.norm_out.load_state_dict(dec.conv_norm_out.state_dict())
        self.conv_out = CausalConv3d(dec.conv_out, k)

    def forward(self, z: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z, cache)
        x = self.conv_in(z, cache)  # (b, c, f, h, w)
        x = self.mid(x, cache)
        for block in self.blocks:
            x = block(x, cache)  # time doubles (after frame 0) in the last two blocks
        return self.conv_out(F.silu(per_frame(self.norm_out, x)), cache)  # (b, 3, F, H, W)


def _check_supported(vae: nn.Module, cfg: CausalVAEConfig) -> None:
    names = {type(b).__name__ for b in vae.encoder.down_blocks} | {type(b).__name__ for b in vae.decoder.up_blocks}
    if not names <= {"DownEncoderBlock2D", "UpDecoderBlock2D"}:
        raise LdmVideoError(f"causal 3D VAE supports SD VAEs (DownEncoderBlock2D / UpDecoderBlock2D), found {names}")
    n_down = sum(b.downsamplers is not None for b in vae.encoder.down_blocks)
    if any(i < 0 or i >= n_down for i in cfg.temporal_down_blocks) or len(set(cfg.temporal_down_blocks)) != len(
            cfg.temporal_down_blocks):
        raise LdmVideoError(f"temporal_down_blocks {cfg.temporal_down_blocks} must be distinct encoder blocks "
                            f"with a down-sampler (0..{n_down - 1})")


class CausalVAE(VideoVAE):
    """The SD VAE as a causal 3D VAE with 4x temporal compression; see the module docstring."""

    kind = KIND

    def __init__(self, vae: nn.Module, config: CausalVAEConfig = CausalVAEConfig(), base: str = ""):
        super().__init__()
        _check_supported(vae, config)
        self.config = config
        self.base = base  # where the inflated SD VAE came from (recorded in saved folders)
        self._vae_config = dict(vae.config)
        self.encoder = CausalEncoder(vae, config)
        self.decoder = CausalDecoder(vae, config)
        name_cache_keys(self)

    @property
    def vae_config(self):
        return self._vae_config

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each block's activations in backward (training memory; chunked inference unaffected)."""
        for module in self.modules():
            if isinstance(module, CausalBlock):
                module.gradient_checkpointing = True

    @property
    def temporal_compression(self) -> int:  # type: ignore[override]
        return self.config.temporal_compression

    def encode_moments(self, video: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """Chunked causal encode: first chunk 1 + c frames, then c frames each (c a multiple of 4)."""
        t = self.temporal_compression
        c = chunk_frames or self.config.encode_chunk_frames
        c = max(t, c // t * t)
        video = video.to(self.dtype)
        num_frames = video.shape[2]
        if num_frames <= 1 + c:
            return self.encoder(video)  # one chunk: no cache needed
        cache: Cache = {}
        bounds = [slice(0, 1 + c)] + [slice(s, min(s + c, num_frames)) for s in range(1 + c, num_frames, c)]
        return torch.cat([self.encoder(video[:, :, s], cache) for s in bounds], dim=2)  # (b, 8, f, h, w)

    def decode_unscaled(self, z: torch.Tensor, chunk_frames: int | None = None) -> Iterator[torch.Tensor]:
        """Chunked causal decode: `chunk_frames` latent frames at a time, with the conv cache."""
        z = z.to(self.dtype)
        chunks = frame_chunks(z.shape[2], chunk_frames or self.config.decode_chunk_frames)
        cache: Cache | None = {} if len(chunks) > 1 else None
        for s in chunks:
            yield self.decoder(z[:, :, s], cache)  # (b, 3, F_chunk, H, W)

    def stream_decoder(self):
        """Decode consecutive latent pieces of one video with one conv cache: equal to a one-shot decode."""
        cache: Cache = {}

        def decode(latents: torch.Tensor) -> torch.Tensor:
            z = latents.to(device=self.device, dtype=self.dtype) / self.scaling_factor  # (b, 4, f_piece, h, w)
            return self.decoder(z, cache)  # (b, 3, F_piece, H, W); 1 + 4 (f - 1) frames in all

        return decode

    def save(self, out_dir: str | os.PathLike, metadata: dict | None = None, extra: dict | None = None) -> Path:
        """Write the whole inflated model (it no longer needs the base) with its config."""
        config = {
            "kind": KIND,
            "config": asdict(self.config),
            "base": self.base,
            "base_vae_config": {k: v for k, v in self._vae_config.items() if not k.startswith("_")},
            "metadata": metadata or {},
        }
        return save_folder(out_dir, config, self.state_dict(), extra)


def load_causal_vae(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> CausalVAE:
    """Rebuild a saved causal VAE from its folder alone (architecture from the recorded SD VAE config)."""
    from diffusers import AutoencoderKL

    saved = read_config(path)
    if saved.get("kind") != KIND:
        raise LdmVideoError(f"{path}: holds a {saved.get('kind')!r} VAE, not a {KIND}")
    try:
        cfg = dict(saved["config"])
        cfg["temporal_down_blocks"] = tuple(cfg.get("temporal_down_blocks", (0, 1)))
        config = CausalVAEConfig(**cfg)
        vae2d = AutoencoderKL.from_config(saved["base_vae_config"])
    except (KeyError, TypeError, ValueError) as err:
        raise LdmVideoError(f"{path}: bad causal VAE config ({type(err).__name__}: {err})") from None
    model = CausalVAE(vae2d, config, base=saved.get("base", ""))
    state = read_weights(path)
    missing = [k for k in model.state_dict() if k not in state]
    if missing:
        raise CheckpointMismatchError(f"{path}: the file lacks {len(missing)} tensors (first: {missing[0]})")
    load_state_strict(model, state, str(path))
    return model.to(dtype).eval().requires_grad_(False)


def check_base_matches(model: CausalVAE, vae_config, where: str) -> None:
    """Raise CheckpointMismatchError when `model` was inflated from a VAE of another architecture."""
    check_arch(arch_config(model.vae_config), vae_config, where)
