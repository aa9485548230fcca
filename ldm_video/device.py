"""Devices and dtypes, named as every command's flags name them."""

from __future__ import annotations

import torch

from ldm_video.errors import LdmVideoError

# dtype names of every command: --dtype fp32|fp16|bf16, and --mixed-precision no|fp16|bf16 (no = fp32)
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PRECISION_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def default_device() -> str:
    """The device a run uses when none is asked for: cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_device(name: str | None, dtype_name: str) -> tuple[torch.device, torch.dtype]:
    """--device / --dtype -> (device, dtype): the default device, and fp32 on CPU / fp16 on GPU for "auto"."""
    device = torch.device(name or default_device())
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LdmVideoError(f"--device {name}: CUDA is not available on this machine")
    if dtype_name == "auto":
        dtype_name = "fp32" if device.type == "cpu" else "fp16"
    if dtype_name == "fp16" and device.type == "cpu":
        raise LdmVideoError("--dtype fp16 needs a GPU; use fp32 or bf16 on CPU")
    return device, DTYPES[dtype_name]
