"""Encode a folder of videos / images into a latent cache (VAE latents + text embeddings, safetensors shards).

`ldm-video train --cache CACHE_DIR` then trains without the VAE and the text encoder on the device. The clip
settings (--frames, --frame-stride / --fps, --resolution, --crop, --images) are fixed at this point; pass
--repeats N to store N different clips / crops of every item.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ldm_video.device import DTYPES, default_device
from ldm_video.train.parts import BaseModel, ClipData
from ldm_video.train.settings import ConfigTree, add_config_arguments, check_at_least, check_choices, opt


@dataclass(frozen=True)
class Encoding:
    """How prepare encodes the clips: with which VAE, how many per item, stored how, on which device."""

    TITLE: ClassVar[str] = "encoding"

    vae: str | None = field(default=None, metadata=opt(
        "video VAE folder from `ldm-video train-vae` to encode with (default: the base's VAE); train with the same "
        "--vae", metavar="DIR"))
    repeats: int = field(default=1, metadata=opt("clips / crops stored per item"))
    dtype: str = field(default="fp16", metadata=opt("storage precision of latents and embeddings", tuple(DTYPES)))
    seed: int = field(default=0, metadata=opt("seed of clip starts, crops and VAE sampling"))
    device: str | None = field(default=None, metadata=opt("cuda, cpu, ... (default: cuda when available)"))

    def __post_init__(self) -> None:
        check_at_least(self, ("repeats",), 1)
        check_choices(self)


@dataclass(frozen=True)
class PrepareConfig(ConfigTree):
    """Everything `ldm-video prepare` reads but the cache folder: train's base and data parts, and the encoding."""

    HELP: ClassVar[dict[str, str]] = {"base": "SD 2.x base (hub id, folder or single .safetensors / .ckpt file) "
                                              "whose VAE and text encoder encode the data"}

    model: BaseModel = field(default_factory=BaseModel)
    data: ClipData = field(default_factory=ClipData)
    encoding: Encoding = field(default_factory=Encoding)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    from ldm_video.flags import add_deprecated

    output = parser.add_mutually_exclusive_group(required=True)  # one of the two spellings
    output.add_argument("--output-dir", dest="output", metavar="CACHE_DIR",
                        help="new folder for the cache (what train --cache reads)")
    add_deprecated(output, "--output", "--output-dir", "output", metavar="CACHE_DIR")
    add_config_arguments(parser, PrepareConfig, required=("data",), config_flag=False)


def run(args: argparse.Namespace) -> int:
    from ldm_video.base import load_base
    from ldm_video.train.cache import check_cache_target, prepare_cache
    from ldm_video.train.settings import resolve_config
    from ldm_video.vae import load_video_vae

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = resolve_config(args, PrepareConfig)
    check_cache_target(args.output)  # an output that cannot be written is said before any scan or loading
    model, encoding = config.model, config.encoding
    device = encoding.device or default_device()
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    base = load_base(model.base, ("text_encoder", "tokenizer"), dtype, device, variant=model.base_variant)
    base.vae = load_video_vae(encoding.vae or model.base, base=model.base, dtype=dtype, device=device,
                              variant=model.base_variant)
    base.vae.check_num_frames(config.data.frames, what="--frames")
    out = prepare_cache(base, config.data.data_config(), args.output, repeats=encoding.repeats, seed=encoding.seed,
                        dtype=DTYPES[encoding.dtype], vae_name=encoding.vae)
    print(f"latent cache written to {out}")
    return 0
