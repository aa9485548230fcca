"""Encode a folder of videos / images into a latent cache (VAE latents + text embeddings, safetensors shards).

`ldm-video train --cache CACHE_DIR` then trains without the VAE and the text encoder on the device. The clip
settings (--frames, --frame-stride / --fps, --resolution, --crop, --images) are fixed at this point; pass
--repeats N to store N different clips / crops of every item.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch

from ldm_video.base import DEFAULT_BASE
from ldm_video.device import DTYPES, default_device
from ldm_video.errors import LdmVideoError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--base", default=DEFAULT_BASE,
                        help="SD 2.x base (hub id, folder or single .safetensors / .ckpt file) whose VAE and text "
                             "encoder encode the data (default: %(default)s)")
    parser.add_argument("--base-variant", metavar="VARIANT", default=None,
                        help="single-file --base only: 2.1-base, 2.1-768-v or a diffusers folder of configs "
                             "(both SD 2.1 variants share the VAE and text encoder)")
    parser.add_argument("--data", required=True, help="folder of videos / images with captions (or one file)")
    from ldm_video.flags import add_deprecated

    output = parser.add_mutually_exclusive_group(required=True)  # one of the two spellings
    output.add_argument("--output-dir", dest="output", metavar="CACHE_DIR",
                        help="new folder for the cache (what train --cache reads)")
    add_deprecated(output, "--output", "--output-dir", "output", metavar="CACHE_DIR")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip (default: %(default)s)")
    parser.add_argument("--vae", default=None, metavar="DIR",
                        help="video VAE folder from `ldm-video train-vae` to encode with (default: the base's VAE); "
                             "train with the same --vae")
    parser.add_argument("--frame-stride", type=int, default=1, help="take every n-th frame (default: 1)")
    parser.add_argument("--fps", type=float, default=None, help="sample clips at this frame rate instead")
    parser.add_argument("--resolution", default="256", help="256 or HxW like 256x448 (default: %(default)s)")
    parser.add_argument("--crop", choices=("center", "random"), default="center", help="crop (default: center)")
    parser.add_argument("--images", choices=("pseudo-video", "frame", "off"), default="pseudo-video",
                        help="images as VidRD zoom/pan pseudo-videos, 1-frame samples, or skipped "
                             "(default: %(default)s)")
    parser.add_argument("--buckets", action="store_true",
                        help="aspect-ratio buckets: each clip at the size (about the area of --resolution) "
                             "nearest its aspect, instead of a crop to --resolution")
    parser.add_argument("--repeats", type=int, default=1, help="clips / crops stored per item (default: 1)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="fp16",
                        help="storage precision of latents and embeddings (default: fp16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of clip starts, crops and VAE sampling")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")


def run(args: argparse.Namespace) -> int:
    from ldm_video.base import load_base
    from ldm_video.train.cache import check_cache_target, prepare_cache
    from ldm_video.train.data import DataConfig
    from ldm_video.vae import load_video_vae

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.repeats < 1:
        raise LdmVideoError(f"--repeats must be >= 1, got {args.repeats}")
    check_cache_target(args.output)  # an output that cannot be written is said before any scan or loading
    data = DataConfig(root=args.data, num_frames=args.frames, frame_stride=args.frame_stride, fps=args.fps,
                      resolution=args.resolution, crop=args.crop, images=args.images, buckets=args.buckets)
    device = args.device or default_device()
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    base = load_base(args.base, ("text_encoder", "tokenizer"), dtype, device, variant=args.base_variant)
    base.vae = load_video_vae(args.vae or args.base, base=args.base, dtype=dtype, device=device,
                              variant=args.base_variant)
    base.vae.check_num_frames(args.frames, what="--frames")
    out = prepare_cache(base, data, args.output, repeats=args.repeats, seed=args.seed, dtype=DTYPES[args.dtype],
                        vae_name=args.vae)
    print(f"latent cache written to {out}")
    return 0
