"""`ldm-video export`: trained temporal layers and LoRA in the formats other tools load.

- motion-adapter: the temporal attention as a diffusers `MotionAdapter` folder (AnimateDiff layout), for
  `UNetMotionModel.from_unet2d` / `AnimateDiffPipeline`. It has no place for VidRD temporal convolutions.
- animatediff: the same temporal attention as one safetensors file in AnimateDiff's original key layout
  (A1111 sd-webui-animatediff, ComfyUI-AnimateDiff-Evolved, `MotionAdapter.from_single_file`).
- diffusers-lora: `pytorch_lora_weights.safetensors` for `StableDiffusionPipeline.load_lora_weights`.
- kohya-lora: one safetensors file in kohya naming (A1111, ComfyUI).
- native: everything, as `ldm-video generate --motion` reads it.
Every file's safetensors header records the base (name, U-Net hash), the temporal config, the training
frames / noise prior / alpha and the toolkit version. Outputs are written under a temporary name, then renamed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ldm_video.checkpoint import read_temporal_record
from ldm_video.config import VideoUNetConfig
from ldm_video.errors import LdmVideoError
from ldm_video.files import atomic_write, check_writable, read_safetensors, replace_folder, usual_mode
from ldm_video.lora import DIFFUSERS_LORA_NAME, to_diffusers, to_kohya


def reach_note(temporal_layers: str) -> str | None:
    """What `temporal_layers` cannot take to the other tools' motion formats (None: every format takes them), said
    by `plan` and `train` before any training."""
    if temporal_layers == "conv":
        return (f"--temporal-layers conv: export --format {' / '.join(MOTION_EXPORTERS)} cannot hold these layers "
                "(no temporal attention); only the native format (ldm-video generate) runs them")
    if temporal_layers == "attn+conv":
        return (f"--temporal-layers attn+conv: export --format {' / '.join(MOTION_EXPORTERS)} keep the attention only "
                "(--drop-temporal-conv) and lose what the convolutions learnt; --temporal-layers attn exports whole")
    return None


def export_metadata(record: dict) -> dict[str, str]:
    """The facts every exported file carries in its safetensors header (all values are strings)."""
    from ldm_video import __version__

    meta = record.get("metadata", {})
    facts = {
        "ldm_video_version": __version__,
        "ldm_video_base_model": record["base"].get("name") or "",
        "ldm_video_base_unet_hash": record["base"].get("unet_hash") or "",
        "ldm_video_temporal_config": json.dumps(record["temporal"]),
    }
    for key in ("num_frames", "noise_prior", "noise_alpha", "resolution", "prediction_type"):
        if key in meta:
            facts[f"ldm_video_{key}"] = str(meta[key])
    return facts


def _add_header(path: Path, facts: dict[str, str]) -> None:
    """Rewrite a safetensors file with `facts` merged into its header (what was there is kept)."""
    with safe_open(str(path), "pt") as f:
        header = dict(f.metadata() or {})
    tensors = load_file(str(path))
    header.update(facts)
    atomic_write(path, lambda p: save_file(tensors, str(p), metadata=header))


def _split(state: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def _lora(state: dict, record: dict, source: Path) -> tuple[dict, float]:
    config = VideoUNetConfig.from_dict(record["temporal"])
    lora = _split(state, "lora")
    if config.lora_rank == 0 or not lora:
        raise LdmVideoError(f"{source}: has no LoRA (trained with lora_rank=0); nothing to export as a LoRA")
    return lora, config.lora_alpha or float(config.lora_rank)


def _adapter(state: dict, record: dict, source: Path, drop_conv: bool, fmt: str):
    """The checkpoint's temporal attention as a diffusers MotionAdapter (refusing what the format cannot hold)."""
    from ldm_video.video_unet import motion_adapter_for

    config = VideoUNetConfig.from_dict(record["temporal"])
    if not config.use_attention:
        raise LdmVideoError(f"{source}: has no temporal attention (temporal_layers={config.temporal_layers!r}); "
                            f"a {fmt} motion module would be empty")
    if config.use_conv and not drop_conv:
        raise LdmVideoError(f"{source}: holds VidRD temporal convolutions, which the {fmt} format has no "
                            "place for; pass --drop-temporal-conv to export the attention alone")
    adapter = motion_adapter_for(record["base"]["unet_config"], config)
    adapter.load_state_dict(_split(state, "motion"), strict=True)
    return adapter


def export_motion_adapter(state: dict, record: dict, source: Path, out: Path, drop_conv: bool) -> Path:
    adapter = _adapter(state, record, source, drop_conv, "MotionAdapter")
    if VideoUNetConfig.from_dict(record["temporal"]).motion_norm == "per-frame":
        print(f"note: {source} was trained with per-frame motion GroupNorm; diffusers runs a MotionAdapter "
              "all-frames (docs/export.md: GroupNorm semantics); --format animatediff keeps per-frame", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        adapter.save_pretrained(tmp, safe_serialization=True)
        for weights in Path(tmp).glob("*.safetensors"):
            _add_header(weights, export_metadata(record))
        usual_mode(tmp)  # TemporaryDirectory made it 0700
        replace_folder(Path(tmp), out)
    return out


def export_animatediff(state: dict, record: dict, source: Path, out: Path, drop_conv: bool) -> Path:
    from ldm_video.animatediff import to_original

    adapter = _adapter(state, record, source, drop_conv, "AnimateDiff")
    if out.suffix != ".safetensors":
        out = out / "motion_module.safetensors"
    tensors = to_original(adapter.state_dict())
    norm = VideoUNetConfig.from_dict(record["temporal"]).motion_norm
    header = {"ldm_video_motion_norm": norm, **export_metadata(record)}
    atomic_write(out, lambda p: save_file(tensors, str(p), metadata=header))
    return out


def export_diffusers_lora(state: dict, record: dict, source: Path, out: Path) -> Path:
    from diffusers import StableDiffusionPipeline

    lora, alpha = _lora(state, record, source)
    rank = VideoUNetConfig.from_dict(record["temporal"]).lora_rank
    adapter_meta = {"r": rank, "lora_alpha": alpha, "target_modules": ["to_q", "to_k", "to_v", "to_out.0"]}
    folder = out if out.suffix != ".safetensors" else out.parent
    name = DIFFUSERS_LORA_NAME if out.suffix != ".safetensors" else out.name
    with tempfile.TemporaryDirectory(dir=folder.parent if folder == out else folder, prefix=".lora.") as tmp:
        StableDiffusionPipeline.save_lora_weights(tmp, unet_lora_layers=to_diffusers(lora), weight_name=name,
                                                  unet_lora_adapter_metadata=adapter_meta)
        _add_header(Path(tmp) / name, export_metadata(record))
        folder.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(tmp) / name), folder / name)
    return folder / name


def export_kohya_lora(state: dict, record: dict, source: Path, out: Path) -> Path:
    lora, alpha = _lora(state, record, source)
    if out.suffix != ".safetensors":
        out = out / "lora_kohya.safetensors"
    kohya = {k: v.contiguous() for k, v in to_kohya(lora, alpha).items()}
    header = {"ss_network_module": "networks.lora", "ss_network_dim": str(lora_rank(lora)),
              "ss_network_alpha": str(alpha), **export_metadata(record)}
    atomic_write(out, lambda p: save_file(kohya, str(p), metadata=header))
    return out


def lora_rank(lora: dict) -> int:
    return next(v.shape[0] for k, v in lora.items() if "lora_A" in k)


def export_native(state: dict, record: dict, source: Path, out: Path) -> Path:
    from ldm_video.checkpoint import CONFIG_NAME, WEIGHTS_NAME

    header = {"format": record["format"], "temporal_config": json.dumps(record["temporal"]),
              "base_name": record["base"].get("name") or "", "base_unet_hash": record["base"].get("unet_hash") or "",
              **export_metadata(record)}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata=header))
    atomic_write(out / CONFIG_NAME, lambda p: p.write_text(json.dumps(record, indent=2)))
    return out


# (state, record, source folder, out, drop_conv) -> written path: the formats that hold temporal attention only,
# and may leave VidRD's temporal convolutions behind when told to (--drop-temporal-conv)
MotionExporter = Callable[[dict, dict, Path, Path, bool], Path]
MOTION_EXPORTERS: dict[str, MotionExporter] = {
    "motion-adapter": export_motion_adapter,
    "animatediff": export_animatediff,
}
# (state, record, source folder, out) -> written path: the formats that keep what they export as it is
Exporter = Callable[[dict, dict, Path, Path], Path]
EXPORTERS: dict[str, Exporter] = {
    "diffusers-lora": export_diffusers_lora,
    "kohya-lora": export_kohya_lora,
    "native": export_native,
}
FORMATS = (*MOTION_EXPORTERS, *EXPORTERS)


def export(motion: str | Path, fmt: str, out: str | Path, drop_temporal_conv: bool = False) -> Path:
    """Export the checkpoint at `motion` (a training output or native folder) as `fmt` to `out`."""
    if fmt not in FORMATS:
        raise LdmVideoError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if drop_temporal_conv and fmt not in MOTION_EXPORTERS:
        raise LdmVideoError(f"--drop-temporal-conv applies to {' / '.join(MOTION_EXPORTERS)}; {fmt} keeps what it "
                            "exports as it is")
    source = Path(motion)
    record, weights = read_temporal_record(source)
    out = Path(out)
    check_writable(out, f"{fmt} export")
    state = read_safetensors(weights)
    if fmt in MOTION_EXPORTERS:
        return MOTION_EXPORTERS[fmt](state, record, source, out, drop_temporal_conv)
    return EXPORTERS[fmt](state, record, source, out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--motion", required=True,
                        help="training output folder (or native temporal-layer folder / .safetensors file)")
    parser.add_argument("--format", required=True, choices=list(FORMATS),
                        help="motion-adapter: diffusers MotionAdapter folder; animatediff: one .safetensors in "
                             "AnimateDiff's original layout (A1111 / ComfyUI motion model); diffusers-lora: "
                             "pytorch_lora_weights.safetensors; kohya-lora: A1111/ComfyUI LoRA file; "
                             "native: everything, for ldm-video generate --motion")
    parser.add_argument("--out", required=True,
                        help="output folder (motion-adapter, native) or folder / .safetensors file (animatediff, LoRA formats)")
    parser.add_argument("--drop-temporal-conv", action="store_true",
                        help="motion-adapter / animatediff: export the temporal attention without the temporal convolutions")


def run(args: argparse.Namespace) -> int:
    path = export(args.motion, args.format, args.out, args.drop_temporal_conv)
    print(f"wrote {args.format} to {path}")
    return 0
