"""Devices and dtypes, named as every command's flags name them."""

from __future__ import annotations

import torch

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
