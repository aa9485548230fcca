"""ldm-video: Stable Diffusion 2.1 as a text-to-video model.

Temporal attention (AnimateDiff / diffusers MotionAdapter layout) and temporal convolutions (VidRD)
injected into a frozen SD 2.1 U-Net; PYoCo noise priors; VidRD iterative long-video generation.
"""

import logging

# diffusers imports bitsandbytes when it is installed; on CPUs with AVX512-BF16 bitsandbytes then warns, at
# every import, that an optional 4-bit inference kernel is missing. ldm-video only uses its 8-bit AdamW, so
# that one logger is quieted (its errors still show).
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
# bitsandbytes then asks the `kernels` package for a hub kernel, which, offline, warns that it skips a
# publisher check: nothing ldm-video loads (its errors still show)
logging.getLogger("kernels").setLevel(logging.ERROR)

import importlib

# the public names, imported on first use (PEP 562), so that `ldm-video --help` does not load torch
_EXPORTS = {
    "BaseModel": "ldm_video.base", "check_base": "ldm_video.base", "load_base": "ldm_video.base",
    "load_temporal": "ldm_video.checkpoint", "save_temporal": "ldm_video.checkpoint",
    "VideoUNetConfig": "ldm_video.config",
    "NOISE_PRIORS": "ldm_video.noise", "video_noise": "ldm_video.noise",
    "VideoUNet": "ldm_video.video_unet", "inflate_unet": "ldm_video.video_unet",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ldm_video' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


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
