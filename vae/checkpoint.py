"""Video-VAE folders on disk: one JSON config and one safetensors file, written atomically.

A folder holds `video_vae.json` (the kind, its frozen config, the SD VAE config it was built from, a
fingerprint of the base weights it needs) and `video_vae.safetensors`. It is written to a temporary
sibling folder and renamed into place, so an interrupted save never leaves a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ldm_video.errors import CheckpointMismatchError, LdmVideoError

CONFIG_NAME = "video_vae.json"
WEIGHTS_NAME = "video_vae.safetensors"
FORMAT = "ldm-video-vae"
FORMAT_VERSION = 1

# AutoencoderKL config keys that fix the architecture; a saved VAE and a base must agree on all of them
ARCH_KEYS = (
    "in_channels", "out_channels", "down_block_types", "up_block_types", "block_out_channels",
    "layers_per_block", "latent_channels", "norm_num_groups", "act_fn", "scaling_factor",
    "use_quant_conv", "use_post_quant_conv", "mid_block_add_attention",
)


def arch_config(vae_config: Any) -> dict:
    """The architecture-defining part of an AutoencoderKL config, JSON-normalised (tuples -> lists)."""
    return {k: json.loads(json.dumps(vae_config[k])) for k in ARCH_KEYS if k in vae_config}


def check_arch(saved: dict, vae_config: Any, where: str) -> None:
    """Raise CheckpointMismatchError naming the first architecture key where `saved` and the base differ."""
    given = arch_config(vae_config)
    for key in ARCH_KEYS:
        if key in saved and key in given and saved[key] != given[key]:
            raise CheckpointMismatchError(
                f"{where}: saved for a base VAE with {key}={saved[key]}, but the given base VAE has {given[key]}")


def fingerprint(tensors: list[torch.Tensor]) -> str:
    """A short sha256 of some base weights (as float32), to tell two bases of the same shape apart."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def save_folder(
    out_dir: str | os.PathLike,
    config: dict,
    state: dict[str, torch.Tensor],
    extra: dict[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Write config + weights to `out_dir` atomically (temporary sibling folder, then rename).

    Args:
        extra: file name -> function writing that file (given its path), for files that must land together
            with the weights (a training checkpoint's optimizer state).
    """
    from ldm_video.files import atomic_folder

    weights = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}

    def fill(tmp: Path) -> None:
        payload = {"format": FORMAT, "version": FORMAT_VERSION, **config}
        (tmp / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True))
        save_file(weights, str(tmp / WEIGHTS_NAME), metadata={"format": FORMAT, "kind": str(config.get("kind"))})
        for name, write in (extra or {}).items():
            write(tmp / name)

    return atomic_folder(out_dir, fill)


def is_video_vae_folder(path: str | os.PathLike) -> bool:
    """True when `path` is a folder written by `save_folder`."""
    return (Path(path) / CONFIG_NAME).is_file()


def read_config(path: str | os.PathLike) -> dict:
    """The JSON config of a video-VAE folder; one-line LdmVideoError when missing or unreadable."""
    path = Path(path)
    if not path.is_dir():
        raise LdmVideoError(f"{path}: video VAE folder not found")
    cfg_path = path / CONFIG_NAME
    if not cfg_path.is_file():
        raise LdmVideoError(f"{path}: not a video VAE folder (no {CONFIG_NAME})")
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise LdmVideoError(f"{cfg_path}: unreadable config ({err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise LdmVideoError(f"{cfg_path}: not an ldm-video VAE config (format {config.get('format')!r})")
    if config.get("version", 0) > FORMAT_VERSION:
        raise LdmVideoError(f"{cfg_path}: written by a newer ldm-video (format version {config['version']})")
    return config


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The safetensors weights of a video-VAE folder."""
    w_path = Path(path) / WEIGHTS_NAME
    if not w_path.is_file():
        raise LdmVideoError(f"{path}: video VAE folder lacks {WEIGHTS_NAME}")
    try:
        return load_file(str(w_path))
    except (SafetensorError, OSError) as err:
        raise LdmVideoError(f"{w_path}: unreadable weights ({type(err).__name__}: {err})") from None


def load_state_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy `state` into `module`: every saved key must exist with the same shape."""
    own = module.state_dict()
    unknown = [k for k in state if k not in own]
    if unknown:
        raise CheckpointMismatchError(f"{where}: {len(unknown)} saved tensors have no place in the model "
                                      f"(first: {unknown[0]})")
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise CheckpointMismatchError(
                f"{where}: {k} has shape {tuple(v.shape)} in the file but {tuple(own[k].shape)} in the model")
    module.load_state_dict(state, strict=False)
