"""Temporal-aware VAE decoder (VidRD, "Reuse and Diffuse", §3.3 and its released `TemporalDecoder`; SPEC §5).

The SD `AutoencoderKL` keeps its frozen 2D encoder; in each decoder up block a residual temporal-conv stack
(3 x [GroupNorm, SiLU, Dropout, Conv3d kernel (3,1,1)], last conv zero-initialised) follows every ResNet.
At initialisation it decodes exactly like the 2D decoder, frame by frame. Unlike VidRD's released pipeline
(which calls the decoder with the default `num_frames=1` and so silently bypasses the temporal layers), the
decoder here is always run with the true `num_frames` of the chunk it decodes. A single frame
(`num_frames == 1`) skips the temporal stacks, so images decode exactly as with the 2D VAE.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from ldm_video.errors import CheckpointMismatchError, LdmVideoError
from ldm_video.temporal import TemporalConvStack
from ldm_video.vae.checkpoint import (
    arch_config,
    check_arch,
    fingerprint,
    load_state_strict,
    read_config,
    read_weights,
    save_folder,
)
from ldm_video.vae.interface import ImageVAE, frame_chunks

KIND = "temporal-decoder"


@dataclass(frozen=True)
class TemporalDecoderConfig:
    """Shape of the temporal-conv stacks added to the SD VAE decoder."""

    depth: int = 3  # [GroupNorm, SiLU, Dropout, Conv3d] units per stack (SPEC §5: 3)
    kernel_frames: int = 3  # temporal kernel of each Conv3d; padded (k // 2) frames each side
    dropout: float = 0.1  # dropout inside each stack (active in train mode only)
    decoder_trained: bool = False  # True when the whole 2D decoder was fine-tuned too (then it is saved)


def _stack(channels: int, groups: int, cfg: TemporalDecoderConfig) -> TemporalConvStack:
    return TemporalConvStack(channels, depth=cfg.depth, dropout=cfg.dropout, norm_groups=groups,
                             kernel_frames=cfg.kernel_frames)


def _resnet_then_stack(resnet: nn.Module, stack: TemporalConvStack, x: torch.Tensor, num_frames: int) -> torch.Tensor:
    x = resnet(x, temb=None)  # ((b f), c, h, w)
    return stack(x, num_frames)  # VidRD temporal conv after every ResNet


def _check_supported(vae: nn.Module) -> None:
    dec = vae.decoder
    for block in dec.up_blocks:
        if type(block).__name__ != "UpDecoderBlock2D":
            raise LdmVideoError(f"temporal decoder supports SD VAEs with UpDecoderBlock2D up blocks, "
                                f"found {type(block).__name__}")
    if not isinstance(dec.conv_norm_out, nn.GroupNorm):
        raise LdmVideoError("temporal decoder supports SD VAEs with group norm (norm_type='group') only")


class TemporalDecoderVAE(ImageVAE):
    """SD AutoencoderKL + temporal-conv stacks after every ResNet of the decoder's up blocks."""

    kind = KIND

    def __init__(self, vae: nn.Module, config: TemporalDecoderConfig = TemporalDecoderConfig(),
                 base: str = ""):
        super().__init__(vae)
        _check_supported(vae)
        self.config = config
        self.base = base  # where the base VAE came from (recorded in saved folders)
        groups = int(vae.config.norm_num_groups)
        self.temporal = nn.ModuleList(
            nn.ModuleList(_stack(r.conv2.out_channels, groups, config) for r in block.resnets)
            for block in vae.decoder.up_blocks
        )
        self.gradient_checkpointing = False
        self.vae.requires_grad_(False)
        self.temporal.to(device=next(vae.parameters()).device, dtype=next(vae.parameters()).dtype)

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each ResNet + temporal stack in backward (training memory)."""
        self.gradient_checkpointing = True

    def set_trainable(self, train_decoder: bool = False) -> list[nn.Parameter]:
        """Unfreeze the temporal stacks (and the whole decoder when `train_decoder`); return what trains."""
        self.vae.requires_grad_(False)
        self.temporal.requires_grad_(True)
        if train_decoder:
            self.vae.decoder.requires_grad_(True)
            if self.vae.post_quant_conv is not None:
                self.vae.post_quant_conv.requires_grad_(True)
            self.config = TemporalDecoderConfig(**{**asdict(self.config), "decoder_trained": True})
        return [p for p in self.parameters() if p.requires_grad]

    def decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latents (b, 4, f, h, w) -> pixels (b, 3, f, H, W), temporal stacks run with f frames."""
        num_frames = z.shape[2]
        dec = self.vae.decoder
        x = rearrange(z, "b c f h w -> (b f) c h w").to(self.dtype)
        if self.vae.post_quant_conv is not None:
            x = self.vae.post_quant_conv(x)
        x = dec.conv_in(x)  # ((b f), c, h, w)
        x = dec.mid_block(x, None)
        for block, stacks in zip(dec.up_blocks, self.temporal):
            for resnet, stack in zip(block.resnets, stacks):
                if self.gradient_checkpointing and torch.is_grad_enabled():
                    x = checkpoint(_resnet_then_stack, resnet, stack, x, num_frames, use_reentrant=False)
                else:
                    x = _resnet_then_stack(resnet, stack, x, num_frames)
            if block.upsamplers is not None:
                for upsampler in block.upsamplers:
                    x = upsampler(x)
        x = dec.conv_act(dec.conv_norm_out(x))
        x = dec.conv_out(x)  # ((b f), 3, H, W)
        return rearrange(x, "(b f) c h w -> b c f h w", f=num_frames)

    def decode_unscaled(self, z: torch.Tensor, chunk_frames: int | None = None) -> Iterator[torch.Tensor]:
        for s in frame_chunks(z.shape[2], chunk_frames):
            yield self.decode_frames(z[:, :, s])

    def save(self, out_dir: str | os.PathLike, metadata: dict | None = None, extra: dict | None = None) -> Path:
        """Write the temporal stacks (and the decoder when it was trained) with the base VAE's config."""
        state = {k: v for k, v in self.state_dict().items() if k.startswith("temporal.")}
        if self.config.decoder_trained:
            state.update({k: v for k, v in self.state_dict().items()
                          if k.startswith(("vae.decoder.", "vae.post_quant_conv."))})
        config = {
            "kind": KIND,
            "config": asdict(self.config),
            "base": self.base,
            "base_vae_config": arch_config(self.vae.config),
            "base_fingerprint": encoder_fingerprint(self.vae),
            "metadata": metadata or {},
        }
        return save_folder(out_dir, config, state, extra)


def encoder_fingerprint(vae: nn.Module) -> str:
    """Fingerprint of the frozen encoder (which the temporal decoder relies on but does not save)."""
    tensors = [vae.encoder.conv_in.weight, vae.encoder.conv_out.weight]
    if vae.quant_conv is not None:
        tensors.append(vae.quant_conv.weight)
    return fingerprint(tensors)


def load_base_vae(base: str, dtype: torch.dtype = torch.float32, variant: str | None = None) -> nn.Module:
    """The SD `AutoencoderKL` of a base pipeline (folder, hub id or single file, `variant` as in load_base) or of
    a bare `vae/` folder, frozen."""
    from diffusers import AutoencoderKL

    from ldm_video.base import load_base

    folder = Path(base)
    if (folder / "config.json").is_file() and not (folder / "model_index.json").exists():
        try:
            vae = AutoencoderKL.from_pretrained(folder, torch_dtype=dtype)
        except (OSError, ValueError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise LdmVideoError(f"{base}: could not load the SD VAE ({first})") from None
        return vae.requires_grad_(False).eval()
    return load_base(base, components=("vae",), dtype=dtype, variant=variant).vae


def load_temporal_decoder(path: str | os.PathLike, base_vae: nn.Module | None = None,
                          dtype: torch.dtype = torch.float32) -> TemporalDecoderVAE:
    """Rebuild a saved temporal decoder on `base_vae` (or on the base recorded in the folder).

    Raises CheckpointMismatchError when the base VAE differs in shape or weights from the one it was
    trained on.
    """
    saved = read_config(path)
    if saved.get("kind") != KIND:
        raise LdmVideoError(f"{path}: holds a {saved.get('kind')!r} VAE, not a {KIND}")
    if base_vae is None:
        base = saved.get("base") or ""
        if not base:
            raise LdmVideoError(f"{path}: no base recorded; pass the base model it was trained on")
        base_vae = load_base_vae(base, dtype)
    check_arch(saved.get("base_vae_config", {}), base_vae.config, str(path))
    if saved.get("base_fingerprint") and saved["base_fingerprint"] != encoder_fingerprint(base_vae):
        raise CheckpointMismatchError(f"{path}: trained on a base VAE with different encoder weights "
                                      f"than the one given ({saved.get('base') or 'unknown base'})")
    try:
        config = TemporalDecoderConfig(**saved["config"])
    except (KeyError, TypeError) as err:
        raise LdmVideoError(f"{path}: bad temporal-decoder config ({err})") from None
    model = TemporalDecoderVAE(base_vae, config, base=saved.get("base", ""))
    state = read_weights(path)
    missing = [k for k in model.state_dict() if k.startswith("temporal.") and k not in state]
    if missing:
        raise CheckpointMismatchError(f"{path}: the file lacks {len(missing)} temporal tensors (first: {missing[0]})")
    load_state_strict(model, state, str(path))
    return model.eval()
