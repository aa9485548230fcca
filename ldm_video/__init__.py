"""ldm-video: Stable Diffusion 2.1 as a text-to-video model.

Temporal attention (AnimateDiff / diffusers MotionAdapter layout) and temporal convolutions (VidRD)
injected into a frozen SD 2.1 U-Net; PYoCo noise priors; VidRD iterative long-video generation.
"""

from ldm_video.noise import NOISE_PRIORS, video_noise

__version__ = "0.1.0"

__all__ = ["NOISE_PRIORS", "video_noise", "__version__"]
