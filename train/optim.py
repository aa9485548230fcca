"""Optimiser, learning-rate schedule and EMA for the trainable (temporal + LoRA) parameters.

AdamW from torch, or 8-bit AdamW from bitsandbytes (Dettmers et al. 2022; its optimiser states take 2 bytes
per parameter instead of 8, runs on CPU too); schedules from diffusers `get_scheduler`; EMA is diffusers'
`EMAModel`.
"""

from __future__ import annotations

import torch

from ldm_video.errors import LdmVideoError


def build_optimizer(params: list[torch.nn.Parameter], name: str, lr: float, weight_decay: float):
    """AdamW ("adamw") or bitsandbytes AdamW8bit ("adamw8bit") over `params`."""
    if not params:
        raise LdmVideoError("nothing to train: the model has no trainable parameters")
    if name == "adamw":
        # not fused: ~4 % of a demo step, inside run-to-run spread (RESULTS, "The demo in parallel")
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise LdmVideoError("--optimizer adamw8bit needs bitsandbytes (pip install bitsandbytes)") from None
        return bnb.optim.AdamW8bit(params, lr=lr, weight_decay=weight_decay)
    raise LdmVideoError(f"unknown optimizer {name!r}; choose adamw or adamw8bit")


def build_lr_scheduler(optimizer, name: str, warmup_steps: int, max_steps: int):
    """A diffusers schedule stepped once per optimiser step."""
    from diffusers.optimization import get_scheduler

    return get_scheduler(name, optimizer=optimizer, num_warmup_steps=warmup_steps, num_training_steps=max_steps)


def build_ema(params: list[torch.nn.Parameter], decay: float):
    """diffusers EMAModel over `params` (its decay warms up as min(decay, (1 + n) / (10 + n)))."""
    from diffusers.training_utils import EMAModel

    return EMAModel(params, decay=decay)
