"""ldm-video: Stable Diffusion 2.1 as a text-to-video model.

Temporal attention (AnimateDiff / diffusers MotionAdapter layout) and temporal convolutions (VidRD)
injected into a frozen SD 2.1 U-Net; PYoCo noise priors; VidRD iterative long-video generation.
"""

import logging

# diffusers imports bitsandbytes when it is installed; on CPUs with AVX512-BF16 bitsandbytes then warns, at
# every import, that an optional 4-bit inference kernel is missing. ldm-video only uses its 8-bit AdamW, so
# that one logger is quieted (its errors still show).
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

from ldm_video.base import BaseModel, check_base, load_base
from ldm_video.checkpoint import load_temporal, save_temporal
from ldm_video.config import VideoUNetConfig
from ldm_video.noise import NOISE_PRIORS, video_noise
from ldm_video.video_unet import VideoUNet, inflate_unet

__version__ = "0.1.0"

__all__ = [
    "NOISE_PRIORS",
    "BaseModel",
    "VideoUNet",
    "VideoUNetConfig",
    "__version__",
    "check_base",
    "inflate_unet",
    "load_base",
    "load_temporal",
    "save_temporal",
    "video_noise",
]
