"""Fine-tune temporal layers (and optional LoRA) of a frozen SD 2.x U-Net on a folder of videos and images.

Built on accelerate: `ldm-video train ...` on one device, or `accelerate launch -m ldm_video train ...`
for several processes. Settings come from the flags below, `--config FILE.yaml` (keys are the flag names,
flags given win), defaults otherwise; the resolved settings are saved as OUTPUT_DIR/train_config.yaml.
The output folder holds the trained layers in the format `ldm-video generate --motion OUTPUT_DIR` loads,
plus checkpoints/ (resumable with --resume latest), validation/ (mp4s) and logs/ (TensorBoard, when installed).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ldm_video.train.config import TrainConfig
from ldm_video.train.settings import add_config_arguments, resolve_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser, TrainConfig)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    from ldm_video.flags import add_threads

    add_threads(parser)


def run(args: argparse.Namespace) -> int:
    from ldm_video.train.trainer import train

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("accelerate", "diffusers", "transformers", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from ldm_video.flags import set_threads

    set_threads(args.threads)
    if getattr(args, "cache", None) and getattr(args, "cache_latents", False):  # both given as flags
        from ldm_video.errors import LdmVideoError

        raise LdmVideoError("--cache-latents encodes --data into OUTPUT_DIR/latent-cache; --cache is already a latent "
                            "cache: give one of them (a preset's cache_latents is fine with --cache)")
    _base_from_cache(args)
    config = resolve_config(args, TrainConfig)
    if args.no_progress:
        from ldm_video.flags import hide_library_progress

        hide_library_progress()
    result = train(config, progress=not args.no_progress)
    if result.interrupted:
        if not result.main_process:
            return 130
        print(f"interrupted at step {result.step}; checkpoint written to {result.checkpoint}; "
              f"continue with --resume latest", file=sys.stderr)
        return 130
    if result.main_process:
        print(f"trained {result.step} steps; temporal layers saved in {result.output_dir}")
    return 0


def _base_from_cache(args: argparse.Namespace) -> None:
    """--cache without --base (flag or --config): the base the cache was made with (ldm_video.base's rule)."""
    from ldm_video.train.settings import load_yaml

    if hasattr(args, "base") or not getattr(args, "cache", None):
        return
    if getattr(args, "config", None) and "base" in load_yaml(args.config, TrainConfig):
        return
    from ldm_video.train.cache import read_cache_index

    recorded = read_cache_index(args.cache).get("base")
    if recorded:
        args.base = recorded
