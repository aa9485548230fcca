"""AnimateDiff's own motion-module files (Guo et al., "AnimateDiff", 2023): the original key layout, both ways.

The original layout (`mm_sd_v15_v2.ckpt`, what A1111's sd-webui-animatediff and ComfyUI-AnimateDiff-Evolved
load) names a motion module `down_blocks.N.motion_modules.M.temporal_transformer.*`, its attentions
`attention_blocks.0/1`, its norms `norms.0/1` and `ff_norm`, and stores the fixed sinusoidal frame positions
of every attention as `attention_blocks.J.pos_encoder.pe` (1, length, channels). diffusers' `MotionAdapter`
holds the same weights under other names; diffusers converts original -> MotionAdapter
(`MotionAdapter.from_single_file`), and this module adds the other direction plus the checks that name what
differs when a module does not fit a base U-Net. Reading goes through diffusers' own loader with a local
config built from the base, so nothing is fetched from the hub.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ldm_video.errors import CheckpointMismatchError, LdmVideoError

# sd-webui-animatediff builds v2 / v3 modules with 32 frame positions and loads them strictly, so every export
# has exactly 32 (the table is a fixed sinusoid: a longer one is rebuilt on loading, from the ldm-video header)
A1111_PE_LENGTH = 32

# diffusers MotionAdapter name piece -> original AnimateDiff name piece (inside a transformer block)
_TO_ORIGINAL = (
    (".attn1.", ".attention_blocks.0."),
    (".attn2.", ".attention_blocks.1."),
    (".norm1.", ".norms.0."),
    (".norm2.", ".norms.1."),
    (".norm3.", ".ff_norm."),
)
_MODULE = re.compile(r"^((?:down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.(\d+)\.(.*)$")


def sinusoid(length: int, channels: int) -> torch.Tensor:
    """AnimateDiff's frame positions (1, length, channels): sin on even, cos on odd channels."""
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding

    return SinusoidalPositionalEmbedding(channels, max_seq_length=length).pe.detach().clone()


def to_original(adapter_state: dict[str, torch.Tensor], pe_length: int = A1111_PE_LENGTH) -> dict[str, torch.Tensor]:
    """A MotionAdapter state dict in AnimateDiff's original layout, with `pe_length` frame positions."""
    out: dict[str, torch.Tensor] = {}
    for key, value in adapter_state.items():
        match = _MODULE.match(key)
        if match is None:
            raise LdmVideoError(f"{key}: not a MotionAdapter motion-module key")
        block, index, rest = match.groups()
        prefix = f"{block}.motion_modules.{index}.temporal_transformer."
        if rest.endswith("pos_embed.pe"):
            tb = rest[: -len("pos_embed.pe")]  # "transformer_blocks.K."
            pe = sinusoid(pe_length, value.shape[-1])
            for j in (0, 1):  # the original gives each of the two attentions its own copy
                out[f"{prefix}{tb}attention_blocks.{j}.pos_encoder.pe"] = pe.clone()
            continue
        rest = "." + rest
        for ours, theirs in _TO_ORIGINAL:
            rest = rest.replace(ours, theirs)
        out[prefix + rest[1:]] = value.detach().to("cpu").contiguous()
    return out


def is_original_layout(keys) -> bool:
    """True when the keys are AnimateDiff's original motion-module layout."""
    return any(".motion_modules." in k and ".temporal_transformer." in k for k in keys)


@dataclass(frozen=True)
class ModuleLayout:
    """What an original-layout file's keys say about the motion modules' shapes."""

    down_channels: tuple[int, ...]  # channels of each down block's modules
    down_modules: tuple[int, ...]  # motion modules per down block
    up_modules: tuple[int, ...]  # motion modules per up block
    transformer_layers: int  # transformer blocks per motion module
    mid_block: bool
    pe_length: int


def layout_of(state: dict[str, torch.Tensor]) -> ModuleLayout:
    """Read the module shapes off an original-layout state dict."""
    modules: dict[str, set[int]] = {}
    channels: dict[str, int] = {}
    layers = set()
    pe_lengths = set()
    for key, value in state.items():
        match = _MODULE.match(key)
        if match is None:
            continue
        block, index, rest = match.groups()
        modules.setdefault(block, set()).add(int(index))
        if rest == "temporal_transformer.norm.weight":
            channels[block] = int(value.shape[0])
        tb = re.match(r"temporal_transformer\.transformer_blocks\.(\d+)\.", rest)
        if tb:
            layers.add(int(tb.group(1)))
        if rest.endswith("pos_encoder.pe"):
            pe_lengths.add(int(value.shape[1]))

    def count(kind: str) -> tuple[int, ...]:
        n = 1 + max((int(b.split(".")[1]) for b in modules if b.startswith(kind)), default=-1)
        return tuple(len(modules.get(f"{kind}.{i}", ())) for i in range(n))

    n_down = len(count("down_blocks"))
    return ModuleLayout(
        down_channels=tuple(channels.get(f"down_blocks.{i}", 0) for i in range(n_down)),
        down_modules=count("down_blocks"),
        up_modules=count("up_blocks"),
        transformer_layers=len(layers),
        mid_block="mid_block" in modules,
        pe_length=max(pe_lengths, default=0),
    )


def check_fits(layout: ModuleLayout, unet_config, source: str) -> None:
    """CheckpointMismatchError naming the first difference between a module file and a base U-Net."""
    channels = tuple(unet_config["block_out_channels"])
    per_block = unet_config["layers_per_block"]
    per_block = (per_block,) * len(channels) if isinstance(per_block, int) else tuple(per_block)
    if layout.down_channels != channels:
        raise CheckpointMismatchError(
            f"{source}: motion module for U-Net channels {layout.down_channels} ({len(layout.down_channels)} blocks); "
            f"this base has {channels}" + (" (an SDXL module?)" if len(layout.down_channels) == 3 else ""))
    if layout.down_modules != per_block or layout.up_modules != tuple(n + 1 for n in reversed(per_block)):
        raise CheckpointMismatchError(
            f"{source}: {layout.down_modules} / {layout.up_modules} motion modules per down / up block; "
            f"this base needs {per_block} / {tuple(n + 1 for n in reversed(per_block))}")
    if layout.pe_length == 0:
        raise CheckpointMismatchError(f"{source}: no pos_encoder.pe frame positions; not an AnimateDiff motion module")


def check_positions(state: dict[str, torch.Tensor], source: str) -> None:
    """The frame positions must be AnimateDiff's fixed sinusoid (they are rebuilt for any clip length)."""
    for key, value in state.items():
        if key.endswith("pos_encoder.pe"):
            expected = sinusoid(value.shape[1], value.shape[-1])
            if value.shape != expected.shape or not torch.allclose(value.float(), expected, atol=1e-4):
                raise CheckpointMismatchError(f"{source}: {key} is not AnimateDiff's sinusoidal frame position "
                                              "table (learnt positions are not supported)")
            return


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or .ckpt/.pt file, read by diffusers' single-file loader (pickles only with
    weights_only=True; a "state_dict" wrapper is taken off)."""
    from diffusers.loaders.single_file_utils import load_single_file_checkpoint

    from ldm_video.single_file import refused_pickle

    try:
        state = load_single_file_checkpoint(str(path), local_files_only=True)
    except Exception as err:  # noqa: BLE001 -- safetensors, pickle and OS errors all end here; one line is the point
        if path.suffix != ".safetensors" and refused_pickle(path):
            raise LdmVideoError(f"{path}: holds Python objects besides tensors; ldm-video reads .ckpt files only "
                                "with weights_only=True (convert it to .safetensors)") from None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LdmVideoError(f"{path}: unreadable weights file ({first})") from None
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def header_of(path: Path) -> dict[str, str]:
    if path.suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return dict(f.metadata() or {})


def load_original(path: str | Path, unet_config, attention_heads: int | None = None):
    """An original-layout file as a diffusers MotionAdapter shaped for `unet_config`, and its VideoUNetConfig.

    Heads: from the ldm-video header if the file has one, else `attention_heads`, else AnimateDiff's 8.
    Motion norm: the header's (an ldm-video export), else per-frame, as the original AnimateDiff code that made
    such files normalises (diffusers' own loading runs them all-frames).
    """
    from diffusers import MotionAdapter

    from ldm_video.config import VideoUNetConfig
    from ldm_video.video_unet import motion_adapter_for

    path = Path(path)
    state = read_state(path)
    if not is_original_layout(state):
        raise LdmVideoError(f"{path}: not an AnimateDiff motion module (no *.motion_modules.*.temporal_transformer.* "
                            "keys)")
    layout = layout_of(state)
    check_fits(layout, unet_config, str(path))
    check_positions(state, str(path))
    header = header_of(path)
    saved = json.loads(header.get("ldm_video_temporal_config", "{}"))
    heads = saved.get("attention_heads") or attention_heads or 8
    config = VideoUNetConfig(temporal_layers="attn", attention_heads=heads,
                             attention_layers=layout.transformer_layers,
                             max_frames=saved.get("max_frames") or layout.pe_length,
                             mid_block=layout.mid_block, motion_norm=header.get("ldm_video_motion_norm", "per-frame"))
    try:
        expected = motion_adapter_for(unet_config, config)
    except ValueError as err:
        raise CheckpointMismatchError(f"{path}: {err}") from None
    with tempfile.TemporaryDirectory(prefix="ldm-video-mm-") as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(dict(expected.config)))
        from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

        converted = set(convert_animatediff_checkpoint_to_diffusers(state))
        wanted = {k for k in expected.state_dict() if not k.endswith("pos_embed.pe")}
        if converted != wanted:
            missing, extra = sorted(wanted - converted), sorted(converted - wanted)
            raise CheckpointMismatchError(f"{path}: keys do not fit the motion module this base needs "
                                          f"(missing {missing[:2]}, unexpected {extra[:2]})")
        try:
            adapter = MotionAdapter.from_single_file(state, config=tmp, local_files_only=True,
                                                     low_cpu_mem_usage=False)
        except (OSError, ValueError, RuntimeError) as err:
            raise CheckpointMismatchError(f"{path}: {str(err).strip().splitlines()[0]}") from None
    return adapter, config
