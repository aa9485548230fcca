"""Loading the Stable Diffusion 2.x base model (SPEC §1) from a hub id, a local diffusers folder or a single
checkpoint file (`model.safetensors` / `.ckpt`, see `ldm_video.single_file`).

One rule for `--base` across commands: when it is not given, a command that reads a run (`generate --motion`,
`eval-vae --vae`, `train --cache`) takes the base that run records, and otherwise `DEFAULT_BASE`. A hub id is
read from the local Hugging Face cache when the hub cannot be reached; when it is not cached either, the command
says so at once (one connection attempt of a few seconds, instead of the hub client's ~25 s of retries).

Before any weights are read, the folder's configs are checked: an SD 1.x, SDXL or bare-UNet folder is
refused with one line saying what was found. The prediction type (epsilon for SD 2.1-base, v_prediction
for SD 2.1 768 px) and the VAE scale always come from the model's own configs.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ldm_video.errors import BaseModelError

COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
DEFAULT_BASE = "stabilityai/stable-diffusion-2-1-base"  # --base when neither the flag nor a run names one
HUB_TIMEOUT_S = 3.0  # how long the one connection attempt to the hub may take


@dataclass
class BaseModel:
    """The parts of an SD 2.x pipeline this toolkit uses; a part not asked for is None."""

    name: str  # hub id or local folder it came from
    prediction_type: str  # "epsilon" or "v_prediction", from the scheduler config
    unet: Any = None  # diffusers UNet2DConditionModel
    vae: Any = None  # diffusers AutoencoderKL (or an ldm_video.vae.VideoVAE put in its place)
    text_encoder: Any = None  # transformers CLIPTextModel
    tokenizer: Any = None  # transformers CLIPTokenizer
    scheduler: Any = None  # diffusers DDPMScheduler with the base's training noise schedule

    @property
    def vae_scale(self) -> float:
        config = getattr(self.vae, "vae_config", None) or self.vae.config  # VideoVAE or AutoencoderKL
        return float(config["scaling_factor"])


def _is_local(name: str) -> bool:
    return os.path.isabs(name) or name.startswith((".", "~")) or os.path.exists(name) or name.count("/") != 1


@functools.lru_cache(maxsize=1)  # asked once per command
def hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be reached now (offline mode, no route, no name resolution), or None.

    One TCP connection to the hub (or to the HTTPS proxy, when one is set), with a short timeout.
    """
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    proxy = next((os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
                  if os.environ.get(k)), None)
    url = urlparse(proxy if proxy else constants.ENDPOINT)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=HUB_TIMEOUT_S).close()
    except OSError as err:
        return f"{host}: {err.strerror or type(err).__name__}"
    return None


def _hub_mode(name: str) -> bool:
    """For a hub id: True to read it from the local cache only (the hub is unreachable); False to use the hub.

    Raises BaseModelError at once when the hub cannot be reached and the model is not in the cache.
    """
    from huggingface_hub import try_to_load_from_cache

    why = hub_unreachable()
    if why is None:
        return False
    if isinstance(try_to_load_from_cache(name, "model_index.json"), str):
        return True
    raise BaseModelError(f"{name}: not in the local Hugging Face cache, and the hub cannot be reached ({why}); "
                         "download it once while online, or pass --base with a local SD 2.x folder or a "
                         ".safetensors file")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BaseModelError(f"{path}: unreadable config ({err})") from None


def _load_configs(name: str) -> tuple[dict, dict, dict]:
    """model_index.json, unet config and scheduler config, from a folder or the hub."""
    if _is_local(name):
        root = Path(name).expanduser()
        if not root.exists():
            raise BaseModelError(f"{name}: base model not found (no such folder, and not a hub id like org/name)")
        if not root.is_dir():
            raise BaseModelError(f"{name}: base model must be a diffusers folder, found a file")
        if not (root / "model_index.json").exists():
            if (root / "config.json").exists():
                cls = _read_json(root / "config.json").get("_class_name", "unknown")
                raise BaseModelError(
                    f"{name}: found a bare {cls} folder; expected a full SD 2.x pipeline folder "
                    f"(model_index.json with unet/, vae/, text_encoder/, tokenizer/, scheduler/)")
            raise BaseModelError(f"{name}: not a diffusers pipeline folder (no model_index.json)")
        index = _read_json(root / "model_index.json")
        missing = [c for c in COMPONENTS if not (root / c).is_dir()]
        if missing:
            raise BaseModelError(f"{name}: pipeline folder lacks {', '.join(missing)}/")
        return index, _read_json(root / "unet" / "config.json"), _read_json(root / "scheduler" / "scheduler_config.json")
    from diffusers import DiffusionPipeline, UNet2DConditionModel
    from diffusers.schedulers import DDPMScheduler

    local = _hub_mode(name)
    try:
        index = DiffusionPipeline.load_config(name, local_files_only=local)
        unet_cfg = UNet2DConditionModel.load_config(name, subfolder="unet", local_files_only=local)
        sched_cfg = DDPMScheduler.load_config(name, subfolder="scheduler", local_files_only=local)
    except Exception as err:  # noqa: BLE001 -- hub errors come in many types; one line is what the user needs
        raise BaseModelError(f"{name}: could not read the model from the hub ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''})") from None
    return dict(index), dict(unet_cfg), dict(sched_cfg)


def check_base(name: str, variant: str | None = None) -> dict:
    """Check that `name` is an SD 2.x pipeline (folder, hub id or single file); return its unet and scheduler
    configs. `variant` picks the config of a single file (`ldm_video.single_file.choose_variant`).

    Raises BaseModelError naming what was found otherwise.
    """
    from ldm_video.single_file import check_single_file, choose_variant, is_single_file, single_file_configs

    if is_single_file(name):
        check_single_file(name)
        chosen = choose_variant(name, variant)
        unet_cfg, sched_cfg = single_file_configs(name, chosen)
        index = _read_json(chosen.config_dir / "model_index.json")
    else:
        if variant:
            raise BaseModelError(f"--base-variant applies to single-file bases only; {name} carries its own configs")
        index, unet_cfg, sched_cfg = _load_configs(name)
    cls = index.get("_class_name", "?")
    if "XL" in cls or "text_encoder_2" in index or unet_cfg.get("addition_embed_type") == "text_time":
        raise BaseModelError(f"{name}: found an SDXL model ({cls}); ldm-video needs Stable Diffusion 2.x")
    if cls not in ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline"):
        raise BaseModelError(f"{name}: found a {cls}; ldm-video needs a StableDiffusionPipeline (SD 2.x) folder")
    if unet_cfg.get("_class_name") != "UNet2DConditionModel" or unet_cfg.get("in_channels") != 4:
        raise BaseModelError(f"{name}: unet is a {unet_cfg.get('_class_name')} with "
                             f"{unet_cfg.get('in_channels')} input channels; SD 2.x has a 4-channel UNet2DConditionModel")
    if not unet_cfg.get("use_linear_projection", False) or unet_cfg.get("cross_attention_dim") == 768:
        raise BaseModelError(
            f"{name}: found an SD 1.x-shaped model (use_linear_projection=False, cross_attention_dim="
            f"{unet_cfg.get('cross_attention_dim')}); ldm-video needs Stable Diffusion 2.x")
    prediction = sched_cfg.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction"):
        raise BaseModelError(f"{name}: scheduler prediction_type {prediction!r} is not epsilon or v_prediction")
    return {"unet": unet_cfg, "scheduler": sched_cfg, "prediction_type": prediction}


def load_base(
    name: str,
    components: tuple[str, ...] = COMPONENTS,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    variant: str | None = None,
) -> BaseModel:
    """Load the asked-for parts of an SD 2.x model with diffusers' / transformers' own `from_pretrained`
    (or `from_single_file` for a checkpoint file; `variant` as in `check_base`)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from ldm_video.single_file import choose_variant, is_single_file, load_single_file

    info = check_base(name, variant)
    unknown = set(components) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"unknown components {sorted(unknown)}; choose from {COMPONENTS}")
    base = BaseModel(name=str(name), prediction_type=info["prediction_type"])
    if is_single_file(name):
        for part, module in load_single_file(name, components, dtype, choose_variant(name, variant)).items():
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False).eval().to(device)
            setattr(base, part, module)
        return base
    local = {} if _is_local(name) else {"local_files_only": _hub_mode(name)}  # a cached hub id, offline
    loaders = {
        "unet": lambda: UNet2DConditionModel.from_pretrained(name, subfolder="unet", torch_dtype=dtype, **local),
        "vae": lambda: AutoencoderKL.from_pretrained(name, subfolder="vae", torch_dtype=dtype, **local),
        "text_encoder": lambda: CLIPTextModel.from_pretrained(name, subfolder="text_encoder", torch_dtype=dtype,
                                                              **local),
        "tokenizer": lambda: CLIPTokenizer.from_pretrained(name, subfolder="tokenizer", **local),
        "scheduler": lambda: DDPMScheduler.from_pretrained(name, subfolder="scheduler", **local),
    }
    for part in components:
        try:
            module = loaders[part]()
        except (OSError, ValueError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BaseModelError(f"{name}: could not load {part}/ ({first})") from None
        if isinstance(module, torch.nn.Module):
            module.requires_grad_(False).eval().to(device)
        setattr(base, part, module)
    return base
