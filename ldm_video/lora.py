"""LoRA (Hu et al., 2021) of the spatial U-Net in the formats other tools read, through diffusers' converters.

- peft: the state dict that `peft.get_peft_model_state_dict` gives (our native checkpoints hold this).
- diffusers: `pytorch_lora_weights.safetensors` as `StableDiffusionPipeline.save_lora_weights` writes it.
- kohya: `lora_unet_<path>.lora_down.weight / .lora_up.weight / .alpha` (A1111, ComfyUI), via
  `diffusers.utils.convert_state_dict_to_kohya`, whose alpha is corrected to the trained lora_alpha.
Loading any of them goes through diffusers' own `StableDiffusionPipeline.lora_state_dict`, which
recognises both layouts.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ldm_video.errors import LdmVideoError

DIFFUSERS_LORA_NAME = "pytorch_lora_weights.safetensors"


def to_diffusers(peft_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """peft naming -> the `unet_lora_layers` that `StableDiffusionPipeline.save_lora_weights` takes."""
    from diffusers.utils import convert_state_dict_to_diffusers

    return convert_state_dict_to_diffusers(peft_state)


def to_kohya(peft_state: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """peft naming -> kohya naming; every `.alpha` is the trained lora_alpha (diffusers writes the rank)."""
    from diffusers.utils import convert_state_dict_to_kohya

    kohya = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in peft_state.items()})
    for key in kohya:
        if key.endswith(".alpha"):
            kohya[key] = torch.tensor(float(alpha))
    return kohya


def lora_module_count(unet, adapter_name: str) -> int:
    """How many of the U-Net's layers carry the adapter `adapter_name`."""
    from peft.tuners.lora import LoraLayer

    return sum(1 for m in unet.modules() if isinstance(m, LoraLayer) and adapter_name in m.lora_A)


def load_lora_file(unet, path: str | os.PathLike, adapter_name: str = "lora", scale: float = 1.0) -> int:
    """Load a diffusers- or kohya-format LoRA file into the spatial U-Net; returns the layers it reached.

    Raises LdmVideoError when the file is unreadable or some of its layers match nothing in the U-Net.
    """
    from diffusers import StableDiffusionPipeline

    path = Path(path)
    if path.is_dir():
        path = path / DIFFUSERS_LORA_NAME
    if not path.is_file():
        raise LdmVideoError(f"{path}: LoRA file not found")
    try:
        state, alphas, metadata = StableDiffusionPipeline.lora_state_dict(str(path), return_lora_metadata=True)
    except Exception as err:  # noqa: BLE001 -- diffusers raises several types for unreadable / foreign files
        raise LdmVideoError(f"{path}: not a readable LoRA file ({type(err).__name__}: "
                            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})") from None
    unet_state = {k: v for k, v in state.items() if k.startswith("unet.")}
    if not unet_state:
        raise LdmVideoError(f"{path}: holds no U-Net LoRA layers (keys like unet.* or lora_unet_*)")
    # one down-projection per LoRA'd layer, in whichever naming diffusers converted the file to
    expected = [k for k in unet_state if any(d in k for d in ("lora_A.", "lora.down.", "lora_down."))]
    # metadata carries lora_alpha for diffusers-format files; kohya files carry it as `.alpha` tensors
    StableDiffusionPipeline.load_lora_into_unet(unet_state, alphas, unet, adapter_name=adapter_name,
                                                metadata=metadata)
    reached = lora_module_count(unet, adapter_name)
    if reached != len(expected):
        raise LdmVideoError(f"{path}: only {reached} of its {len(expected)} LoRA layers match this U-Net "
                            "(a LoRA for another base?)")
    active = [name for name in (unet.active_adapters() if hasattr(unet, "active_adapters") else [adapter_name])]
    if adapter_name not in active:
        active.append(adapter_name)
    weights = [scale if name == adapter_name else 1.0 for name in active]
    unet.set_adapters(active, weights)
    return reached
