"""Single-file Stable Diffusion 2.x checkpoints (`--base model.safetensors` or `.ckpt`), loaded offline (SPEC §1).

diffusers' `StableDiffusionPipeline.from_single_file` reads the original (LDM) layout; it is given `config=`
one of the config folders this package ships (`ldm_video/sd2/`, configs and tokenizer only), so nothing is
fetched from the hub. SD 2.1-base (epsilon, 512 px) and SD 2.1 (v-prediction, 768 px) have the same tensor
shapes, so which one a file is cannot be read off its weights. The rule, first match wins:

1. `--base-variant 2.1-base|2.1-768-v` (or a diffusers folder whose configs describe the file);
2. an original LDM config next to the file (`model.yaml` beside `model.safetensors`, A1111's convention):
   `parameterization: v` means 2.1-768-v;
3. the safetensors header: `modelspec.architecture` / `modelspec.prediction_type` / kohya's `ss_v_parameterization`;
4. the file name: "768" or a "-v" / "_v" word means 2.1-768-v; "512" or "base" means 2.1-base;
5. otherwise 2.1-base.

The choice and its reason are printed once per file. `.ckpt` files are read with `weights_only=True` only.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from ldm_video.errors import BaseModelError

SD2_DIR = Path(__file__).with_name("sd2")
SUFFIXES = (".safetensors", ".ckpt")
VARIANTS = {"2.1-base": "epsilon, 512 px", "2.1-768-v": "v-prediction, 768 px"}
# keys of the original layout that tell the families apart
_OPEN_CLIP = "cond_stage_model.model.token_embedding.weight"  # SD 2.x text encoder (OpenCLIP ViT-H)
_CLIP_L = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"  # SD 1.x
_SDXL = "conditioner.embedders.1.model.token_embedding.weight"
_CROSS_ATTN = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
_told: set[tuple[str, str]] = set()


def is_single_file(name: str | Path) -> bool:
    """True when a --base value names a checkpoint file rather than a diffusers folder or hub id."""
    return Path(str(name)).suffix.lower() in SUFFIXES and not Path(str(name)).is_dir()


@dataclass(frozen=True)
class Variant:
    config_dir: Path  # a diffusers pipeline folder of configs (weights, if any, are not read)
    name: str  # "2.1-base", "2.1-768-v" or the folder given
    reason: str


def _header(path: Path) -> dict[str, str]:
    if path.suffix.lower() != ".safetensors":
        return {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as err:
        raise BaseModelError(f"{path}: not a readable safetensors file ({err})") from None


def _from_yaml(path: Path) -> str | None:
    import yaml

    for sidecar in (path.with_suffix(".yaml"), path.with_suffix(".yml")):
        if sidecar.is_file():
            try:
                data = yaml.safe_load(sidecar.read_text()) or {}
            except (OSError, yaml.YAMLError) as err:
                raise BaseModelError(f"{sidecar}: unreadable LDM config ({str(err).splitlines()[0]})") from None
            params = (data.get("model") or {}).get("params") or {}
            return "2.1-768-v" if str(params.get("parameterization", "eps")) == "v" else "2.1-base"
    return None


def _from_header(header: dict[str, str]) -> str | None:
    arch = header.get("modelspec.architecture", "")
    if "v2-768-v" in arch or header.get("modelspec.prediction_type", "") in ("v", "v_prediction"):
        return "2.1-768-v"
    if "v2-512" in arch or header.get("modelspec.prediction_type", "") == "epsilon":
        return "2.1-base"
    if header.get("ss_v2", "").lower() == "true" and "ss_v_parameterization" in header:
        return "2.1-768-v" if header["ss_v_parameterization"].lower() == "true" else "2.1-base"
    return None


def _from_name(path: Path) -> str | None:
    stem = path.stem.lower()
    if "768" in stem or re.search(r"(^|[-_.])v($|[-_.])", stem):
        return "2.1-768-v"
    if "512" in stem or "base" in stem:
        return "2.1-base"
    return None


def choose_variant(path: str | Path, override: str | None = None) -> Variant:
    """Which config a single-file checkpoint loads with, and why (the rule in the module docstring)."""
    path = Path(path)
    if override:
        if override in VARIANTS:
            return Variant(SD2_DIR / override, override, "--base-variant")
        folder = Path(override).expanduser()
        if not (folder / "model_index.json").is_file():
            raise BaseModelError(f"--base-variant {override}: choose {' or '.join(VARIANTS)}, or give a diffusers "
                                 "folder with model_index.json and the component configs")
        return Variant(folder, str(folder), "--base-variant folder")
    for how, found in (("the LDM config beside it", _from_yaml(path)),
                       ("its safetensors header", _from_header(_header(path))),
                       ("its file name", _from_name(path))):
        if found:
            return Variant(SD2_DIR / found, found, how)
    return Variant(SD2_DIR / "2.1-base", "2.1-base", "no hint in the file or its name (the default)")


def check_single_file(path: str | Path) -> None:
    """BaseModelError unless `path` is a readable SD 2.x single-file checkpoint (safetensors: keys only)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BaseModelError(f"{path}: base model file not found")
    if path.suffix.lower() != ".safetensors":
        return  # a .ckpt is a pickle: its keys are read when it is loaded (weights_only=True)
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            keys = set(f.keys())
            width = f.get_slice(_CROSS_ATTN).get_shape()[1] if _CROSS_ATTN in keys else None
    except (SafetensorError, OSError) as err:
        raise BaseModelError(f"{path}: not a readable safetensors file ({err})") from None
    _check_family(path, keys, width)


def _check_family(path: Path, keys: set[str], width: int | None) -> None:
    if _SDXL in keys:
        raise BaseModelError(f"{path}: an SDXL single file; ldm-video needs Stable Diffusion 2.x")
    if _CLIP_L in keys:
        raise BaseModelError(f"{path}: an SD 1.x single file (CLIP ViT-L text encoder, text width {width}); "
                             "ldm-video needs Stable Diffusion 2.x")
    if not any(k.startswith("model.diffusion_model.") for k in keys):
        raise BaseModelError(f"{path}: no model.diffusion_model.* U-Net weights; not an original-layout SD checkpoint "
                             "(a LoRA, a VAE or a motion module?)")
    if _OPEN_CLIP not in keys:
        raise BaseModelError(f"{path}: no OpenCLIP text encoder (cond_stage_model.model.*); not an SD 2.x checkpoint")


def _tell(path: Path, variant: Variant) -> None:
    key = (str(path), variant.name)
    if key in _told:
        return
    _told.add(key)
    what = f"SD {variant.name} ({VARIANTS[variant.name]})" if variant.name in VARIANTS else f"the configs in {variant.name}"
    print(f"ldm-video: {path.name}: loading as {what}, from {variant.reason}; --base-variant changes it",
          file=sys.stderr)


def refused_pickle(path: Path) -> bool:
    """True when torch's weights_only loader refuses the file (diffusers reports that as a missing file)."""
    import pickle

    try:
        torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        return True
    except Exception:  # noqa: BLE001 -- any other failure is not about pickled objects
        return False
    return False


@contextmanager
def _quiet_diffusers():
    """No per-component progress bar or dtype notes from diffusers while one file loads."""
    from diffusers.utils import logging as dlog

    level = dlog.get_verbosity()
    bars = dlog.is_progress_bar_enabled()
    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    try:
        yield
    finally:
        dlog.set_verbosity(level)
        if bars:
            dlog.enable_progress_bar()


def load_single_file(path: str | Path, components: tuple[str, ...], dtype: torch.dtype, variant: Variant,
                     quiet: bool = False) -> dict:
    """{component: module} of the asked-for parts, read from one checkpoint by diffusers' own loader."""
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    path = Path(path).expanduser()
    check_single_file(path)
    if not quiet and ("unet" in components or "scheduler" in components):
        _tell(path, variant)  # the variant decides the prediction type and size, nothing else
    skip = {c: None for c in ("unet", "vae", "text_encoder") if c not in components}
    if not (variant.config_dir / "tokenizer").is_dir():
        skip["tokenizer"] = CLIPTokenizer.from_pretrained(SD2_DIR / "tokenizer") if "tokenizer" in components else None
    try:
        with _quiet_diffusers():
            pipe = StableDiffusionPipeline.from_single_file(
                str(path), config=str(variant.config_dir), local_files_only=True, torch_dtype=dtype,
                safety_checker=None, feature_extractor=None, requires_safety_checker=False, **skip)
    except Exception as err:  # noqa: BLE001 -- diffusers raises many types here; the user needs one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if path.suffix.lower() == ".ckpt" and refused_pickle(path):
            raise BaseModelError(f"{path}: the .ckpt holds Python objects besides tensors, and ldm-video reads "
                                 "pickles only with weights_only=True; convert it to .safetensors") from None
        raise BaseModelError(f"{path}: could not load as SD {variant.name} ({first})") from None
    parts = {}
    for name in components:
        module = getattr(pipe, name, None)
        if name == "scheduler":
            module = DDPMScheduler.from_config(pipe.scheduler.config)
        if isinstance(module, torch.nn.Module):
            empty = [n for n, p in module.named_parameters() if p.device.type == "meta"]
            if empty:
                raise BaseModelError(f"{path}: the file has no weights for {name} ({empty[0]}, ...); "
                                     f"not a full SD {variant.name} checkpoint")
        parts[name] = module
    return parts


def single_file_configs(path: str | Path, variant: Variant) -> tuple[dict, dict]:
    """The unet and scheduler configs a single file loads with (for checks that need no weights)."""
    import json

    check_single_file(path)
    unet = json.loads((variant.config_dir / "unet" / "config.json").read_text())
    scheduler = json.loads((variant.config_dir / "scheduler" / "scheduler_config.json").read_text())
    return unet, scheduler
