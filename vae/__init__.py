"""Video VAEs for ldm-video: the temporal-aware decoder (VidRD) and the 3D causal VAE (CogVideoX-style).

Both, and the plain SD VAE, share the `VideoVAE` interface (see `ldm_video.vae.interface`);
`load_video_vae(path_or_base)` returns the right one.
"""

from ldm_video.vae.causal3d import CausalVAE, CausalVAEConfig, load_causal_vae
from ldm_video.vae.interface import ImageVAE, VideoVAE, to_uint8_frames
from ldm_video.vae.loading import KINDS, load_video_vae
from ldm_video.vae.temporal_decoder import (
    TemporalDecoderConfig,
    TemporalDecoderVAE,
    load_base_vae,
    load_temporal_decoder,
)

__all__ = [
    "KINDS", "CausalVAE", "CausalVAEConfig", "ImageVAE", "TemporalDecoderConfig", "TemporalDecoderVAE",
    "VideoVAE", "load_base_vae", "load_causal_vae", "load_temporal_decoder", "load_video_vae", "to_uint8_frames",
]
