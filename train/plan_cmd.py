"""Estimate the peak GPU memory of a training configuration, without a GPU, and say whether it fits.

Takes `ldm-video train`'s --config files (a run's train_config.yaml or a preset) and those of its flags that
change the peak: the base, the temporal layers, the clip size, the batch, precision, checkpointing, optimiser, EMA
and the latent cache. The estimate runs one training step of the real-shaped models on fake tensors (no memory,
no GPU; well under a minute on a CPU) and splits the peak into frozen weights, trainable weights, gradients,
optimiser states and activations. When it does not fit in --gpu-memory, the flags that would help are listed with
the peak each would give.
"""

from __future__ import annotations

import argparse
import time

from ldm_video.train.config import TemporalLayers, TrainConfig
from ldm_video.train.parts import BaseModel
from ldm_video.train.settings import add_config_arguments, field_names, resolve_config

# what `ldm_video.train.plan` reads of a train config: the flags plan takes (the rest of a run's settings, from
# --config or the defaults, does not change the peak)
PLAN_FIELDS = (*field_names(BaseModel), *field_names(TemporalLayers), "frames", "resolution", "cache",
               "cache_latents", "batch_size", "grad_accum", "mixed_precision", "gradient_checkpointing", "optimizer",
               "ema")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--gpu-memory", type=float, default=24.0, metavar="GB",
                        help="memory of the GPU to plan for, in GB (default: 24)")
    add_config_arguments(parser, TrainConfig, only=PLAN_FIELDS)


def run(args: argparse.Namespace) -> int:
    from ldm_video.train.plan import GB, estimate_memory, format_plan, knobs_to_fit

    start = time.perf_counter()
    config = resolve_config(args, TrainConfig)
    plan = estimate_memory(config)
    knobs = knobs_to_fit(config, plan) if plan.total > args.gpu_memory * GB else None
    print(format_plan(config, plan, args.gpu_memory, knobs))
    print(f"(estimated in {time.perf_counter() - start:.1f} s)")
    return 0
