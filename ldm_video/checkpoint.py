"""Saving and loading the temporal layers (and LoRA) apart from the base, as safetensors + a JSON config.

A folder holds `temporal_config.json` and `temporal_layers.safetensors`. Both record the U-Net config of
the base they were trained on (and its hash), so loading them onto another base fails with a clear error
instead of producing noise. Keys: `motion.*` (a diffusers MotionAdapter state dict), `temporal_convs.*`,
`lora.*` (peft's LoRA state dict of the spatial U-Net). Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from ldm_video.config import VideoUNetConfig
from ldm_video.errors import CheckpointMismatchError, LdmVideoError
from ldm_video.files import atomic_write, check_writable, read_safetensors  # noqa: F401  (re-exported: infer.video_io, infer.generate, toy.world)

CONFIG_NAME = "temporal_config.json"
WEIGHTS_NAME = "temporal_layers.safetensors"
FORMAT = "ldm-video/temporal-layers"
FORMAT_VERSION = 1


def unet_architecture(unet_config) -> dict:
    """The parts of a U-Net config that decide its weights' shapes and meaning (no paths, no versions)."""
    items = {k: v for k, v in dict(unet_config).items() if not k.startswith("_")}
    return json.loads(json.dumps(items, sort_keys=True, default=list))


def unet_hash(unet_config) -> str:
    """A short stable hash of `unet_architecture`."""
    blob = json.dumps(unet_architecture(unet_config), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def temporal_state_dict(model) -> dict[str, torch.Tensor]:
    """motion.*, temporal_convs.* and lora.* tensors of a VideoUNet, contiguous and on the CPU."""
    state: dict[str, torch.Tensor] = {}
    for prefix, module in model.temporal_modules().items():
        for key, value in module.state_dict().items():
            state[f"{prefix}.{key}"] = value
    if model.lora_rank:
        from peft.utils import get_peft_model_state_dict

        for key, value in get_peft_model_state_dict(model.unet).items():
            state[f"lora.{key}"] = value
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def save_temporal(model, out_dir: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write `model`'s temporal layers (and LoRA) to `out_dir`; returns the weights file.

    Args:
        metadata: extra facts recorded in the JSON and the safetensors header (frames, noise prior, ...).
    """
    from ldm_video import __version__

    out_dir = Path(out_dir)
    unet_config = model.unet.config
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ldm_video_version": __version__,
        "temporal": model.config.to_dict(),
        "base": {
            "name": str(unet_config.get("_name_or_path", "")),
            "unet_hash": unet_hash(unet_config),
            "unet_config": unet_architecture(unet_config),
        },
        "metadata": dict(metadata or {}),
    }
    header = {
        "format": FORMAT,
        "ldm_video_version": __version__,
        "base_name": record["base"]["name"],
        "base_unet_hash": record["base"]["unet_hash"],
        "temporal_config": json.dumps(record["temporal"]),
        **{k: json.dumps(v) if not isinstance(v, str) else v for k, v in record["metadata"].items()},
    }
    weights = out_dir / WEIGHTS_NAME
    state = temporal_state_dict(model)
    atomic_write(weights, lambda p: save_file(state, str(p), metadata=header))
    atomic_write(out_dir / CONFIG_NAME, lambda p: p.write_text(json.dumps(record, indent=2)))
    return weights


def read_temporal_record(path: str | os.PathLike) -> tuple[dict, Path]:
    """The JSON record and weights path of a saved folder (or of the .safetensors file itself)."""
    path = Path(path)
    if path.is_dir():
        config, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
        if not config.exists() or not weights.exists():
            raise LdmVideoError(f"{path}: not an ldm-video temporal-layer folder (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
        try:
            record = json.loads(config.read_text())
        except json.JSONDecodeError as err:
            raise LdmVideoError(f"{config}: corrupt JSON ({err})") from None
    elif path.is_file():
        weights = path
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                header = f.metadata() or {}
        except (SafetensorError, OSError) as err:
            raise LdmVideoError(f"{path}: not a readable safetensors file ({err})") from None
        if header.get("format") != FORMAT:
            raise LdmVideoError(f"{path}: not an ldm-video temporal-layer file (format={header.get('format')!r})")
        record = {"format": FORMAT, "temporal": json.loads(header["temporal_config"]),
                  "base": {"name": header.get("base_name", ""), "unet_hash": header.get("base_unet_hash")},
                  "metadata": {"context_frames": header.get("context_frames", "0"),
                               **{k: header[k] for k in ("num_frames", "clip_frames", "fps") if k in header}}}
    else:
        raise LdmVideoError(f"{path}: no such file or folder")
    if record.get("format") != FORMAT:
        raise LdmVideoError(f"{path}: not an ldm-video temporal-layer checkpoint (format={record.get('format')!r})")
    return record, weights


def _describe_mismatch(saved: dict | None, given: dict) -> str:
    if not saved:
        return ""
    keys = sorted(k for k in set(saved) | set(given) if saved.get(k) != given.get(k))
    shown = ", ".join(f"{k}: saved {saved.get(k)!r} vs given {given.get(k)!r}" for k in keys[:3])
    return f" ({shown}{', ...' if len(keys) > 3 else ''})" if shown else ""


def check_prediction_type(record: dict, prediction_type: str | None, path) -> None:
    """Temporal layers learn the base's objective: refuse those trained on an epsilon base for a v-prediction
    base of the same shape (or the reverse), which the U-Net hash cannot tell apart."""
    saved = (record.get("metadata") or {}).get("prediction_type")
    if prediction_type and saved and saved != prediction_type:
        raise CheckpointMismatchError(
            f"{path}: temporal layers were trained on a {saved} base, this base predicts {prediction_type} "
            "(e.g. SD 2.1-base vs SD 2.1 768-v); train them on this base")


def load_temporal(path: str | os.PathLike, unet2d, strict: bool = True, prediction_type: str | None = None):
    """Inflate `unet2d` with the config saved at `path` and load the saved temporal layers (and LoRA).

    With strict=False a different base is accepted (with a warning) as long as every tensor fits.
    Raises CheckpointMismatchError when the checkpoint belongs to another base, or (given the base's
    `prediction_type`) was trained for the other objective.
    """
    from ldm_video.video_unet import inflate_unet

    record, weights = read_temporal_record(path)
    check_prediction_type(record, prediction_type, path)
    saved_hash = record["base"].get("unet_hash")
    given_hash = unet_hash(unet2d.config)
    if saved_hash != given_hash:
        detail = _describe_mismatch(record["base"].get("unet_config"), unet_architecture(unet2d.config))
        message = (f"{path}: temporal layers were trained for base {record['base'].get('name') or '?'} "
                   f"(U-Net {saved_hash}), not for this base (U-Net {given_hash}){detail}")
        if strict:
            raise CheckpointMismatchError(message)
        warnings.warn(message + "; loading anyway (strict=False)", stacklevel=2)
    state = read_safetensors(weights)
    model = inflate_unet(unet2d, VideoUNetConfig.from_dict(record["temporal"]))
    load_temporal_state(model, state, source=str(weights))
    return model


def load_temporal_state(model, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Copy motion.* / temporal_convs.* / lora.* tensors into `model`; every key must match exactly."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        prefix, _, rest = key.partition(".")
        groups.setdefault(prefix, {})[rest] = value
    expected = set(model.temporal_modules()) | ({"lora"} if model.lora_rank else set())
    if set(groups) != expected:
        raise CheckpointMismatchError(f"{source}: holds {sorted(groups)} but the model has {sorted(expected)}")
    try:
        for prefix, module in model.temporal_modules().items():
            module.load_state_dict(groups[prefix], strict=True)
        if "lora" in groups:
            from peft.utils import set_peft_model_state_dict

            result = set_peft_model_state_dict(model.unet, groups["lora"])
            unexpected = getattr(result, "unexpected_keys", None)
            if unexpected:
                raise CheckpointMismatchError(f"{source}: LoRA keys not in the model: {unexpected[:3]}")
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointMismatchError(f"{source}: tensors do not fit this model ({first})") from None


def is_motion_adapter_folder(path: str | os.PathLike) -> bool:
    """True for a diffusers MotionAdapter folder (config.json with _class_name MotionAdapter)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("_class_name") == "MotionAdapter"
    except json.JSONDecodeError:
        return False


def read_motion_adapter(path: str | os.PathLike, unet_config):
    """A diffusers MotionAdapter folder or an AnimateDiff original-layout file -> (MotionAdapter, VideoUNetConfig).

    The config describes the attention-only temporal layers that hold the module on a base with `unet_config`.
    """
    from diffusers import MotionAdapter

    path = Path(path)
    if path.is_file():
        from ldm_video.animatediff import load_original

        return load_original(path, unet_config)
    try:
        adapter = MotionAdapter.from_pretrained(str(path))
    except (OSError, ValueError, RuntimeError) as err:
        raise LdmVideoError(f"{path}: unreadable MotionAdapter folder ({str(err).strip().splitlines()[0]})") from None
    c = adapter.config
    heads = c.motion_num_attention_heads
    layers = c.motion_transformer_layers_per_block
    if not isinstance(heads, int) and len(set(heads)) == 1:
        heads = heads[0]
    if not isinstance(layers, int) and len(set(layers)) == 1:
        layers = layers[0]
    if not isinstance(heads, int) or not isinstance(layers, int):
        raise LdmVideoError(f"{path}: per-block head or layer counts ({heads}, {layers}) are not supported")
    config = VideoUNetConfig(temporal_layers="attn", attention_heads=heads, attention_layers=layers,
                             max_frames=c.motion_max_seq_length, mid_block=c.use_motion_mid_block)
    if tuple(c.block_out_channels) != tuple(unet_config["block_out_channels"]):
        raise CheckpointMismatchError(f"{path}: MotionAdapter for channels {tuple(c.block_out_channels)}, "
                                      f"the base U-Net has {tuple(unet_config['block_out_channels'])}")
    return adapter, config


def is_motion_module_file(path: str | os.PathLike) -> bool:
    """True for a .safetensors / .ckpt file that is not an ldm-video temporal-layer file (AnimateDiff's own)."""
    path = Path(path)
    if not path.is_file() or path.suffix not in (".safetensors", ".ckpt", ".pt", ".pth"):
        return False
    if path.suffix != ".safetensors":
        return True
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return (f.metadata() or {}).get("format") != FORMAT
    except (SafetensorError, OSError):
        return False  # read_temporal_record names the problem


def trained_context_frames(path: str | os.PathLike) -> int:
    """Clean leading frames the temporal layers at `path` learnt to continue (`train --context-frames`); 0 when
    they were trained without, and for MotionAdapter folders and AnimateDiff files (which do not record it)."""
    return _trained_int(path, "context_frames")


def trained_context_noise(path: str | os.PathLike) -> int:
    """Largest noise timestep the given frames were augmented with in training (`train --context-noise`); 0
    when they were given clean, and for formats that do not record it."""
    return _trained_int(path, "context_noise")


def trained_context_prob(path: str | os.PathLike) -> float | None:
    """Share of the training clips given context frames (`train --context-prob`), from the layers' metadata or,
    for runs saved before it was recorded there, the run folder's train_config.yaml; None where neither says
    (runs without context frames, MotionAdapter folders and AnimateDiff files)."""
    if is_motion_adapter_folder(path) or is_motion_module_file(path):
        return None
    value = (read_temporal_record(path)[0].get("metadata") or {}).get("context_prob")
    settings = Path(path) / "train_config.yaml"
    if value is None and settings.is_file():
        import yaml

        try:
            value = (yaml.safe_load(settings.read_text()) or {}).get("context_prob")
        except (yaml.YAMLError, AttributeError, UnicodeDecodeError):
            value = None  # unreadable settings: not recorded
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        raise LdmVideoError(f"{path}: context_prob {value!r} in its metadata is not a number") from None


def _trained_int(path: str | os.PathLike, key: str) -> int:
    if is_motion_adapter_folder(path) or is_motion_module_file(path):
        return 0
    record, _ = read_temporal_record(path)
    value = (record.get("metadata") or {}).get(key) or 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LdmVideoError(f"{path}: {key} {value!r} in its metadata is not a whole number") from None


def recorded_base(path: str | os.PathLike) -> str | None:
    """The --base the temporal layers at `path` were trained on (None for MotionAdapter folders / AnimateDiff files,
    which do not record one)."""
    if is_motion_adapter_folder(path) or is_motion_module_file(path):
        return None
    record = read_temporal_record(path)[0]
    return (record.get("metadata") or {}).get("base") or (record.get("base") or {}).get("name") or None


def trained_clip(path: str | os.PathLike) -> tuple[int | None, float | None]:
    """(frames per clip, frames per second) the temporal layers at `path` were trained on; None for what was not
    recorded (MotionAdapter folders, AnimateDiff files, runs older than the record)."""
    if is_motion_adapter_folder(path) or is_motion_module_file(path):
        return None, None
    meta = read_temporal_record(path)[0].get("metadata") or {}
    try:
        frames = meta.get("clip_frames", meta.get("num_frames"))
        fps = meta.get("fps")
        return (int(frames) if frames else None), (float(fps) if fps else None)
    except (TypeError, ValueError):
        raise LdmVideoError(f"{path}: clip_frames / fps {frames!r} / {fps!r} in its metadata are not numbers") from None


def load_motion(path: str | os.PathLike, unet2d, strict: bool = True, prediction_type: str | None = None):
    """`--motion`: a native folder / .safetensors (save_temporal), a diffusers MotionAdapter folder, or an
    AnimateDiff motion-module file in the original layout (.safetensors / .ckpt)."""
    from ldm_video.video_unet import inflate_unet

    if not is_motion_adapter_folder(path) and not is_motion_module_file(path):
        return load_temporal(path, unet2d, strict=strict, prediction_type=prediction_type)
    adapter, config = read_motion_adapter(path, unet2d.config)
    model = inflate_unet(unet2d, config)
    state = {f"motion.{k}": v for k, v in adapter.state_dict().items()}
    load_temporal_state(model, state, source=str(path))
    return model


def read_motion_module(path: str | os.PathLike, unet_config,
                       prediction_type: str | None = None) -> tuple[dict[str, torch.Tensor], VideoUNetConfig]:
    """`train --init-motion`: the temporal attention of anything `--motion` reads, as MotionAdapter tensors,
    with the temporal config that describes it. Raises CheckpointMismatchError when it does not fit the base."""
    if is_motion_adapter_folder(path) or is_motion_module_file(path):
        adapter, config = read_motion_adapter(path, unet_config)
        return adapter.state_dict(), config
    record, weights = read_temporal_record(path)
    check_prediction_type(record, prediction_type, path)
    config = VideoUNetConfig.from_dict(record["temporal"])
    if not config.use_attention:
        raise CheckpointMismatchError(f"{path}: has no temporal attention (temporal_layers="
                                      f"{config.temporal_layers!r}); nothing to start from")
    if record["base"].get("unet_hash") != unet_hash(unet_config):
        detail = _describe_mismatch(record["base"].get("unet_config"), unet_architecture(unet_config))
        raise CheckpointMismatchError(f"{path}: trained for another base U-Net{detail}")
    state = read_safetensors(weights)
    return {k[len("motion."):]: v for k, v in state.items() if k.startswith("motion.")}, config
