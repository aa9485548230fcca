"""The video model for sampling: the SD 2.x U-Net with temporal layers (trained or fresh) and an optional LoRA.

Library code (`generate`, the toy world's evaluations, benchmarks) loads its model here, never through a command
module.
"""

from __future__ import annotations

from ldm_video import inflate_unet
from ldm_video.checkpoint import load_motion
from ldm_video.lora import load_lora_file


def load_lora(model, path: str, scale: float) -> None:
    """A diffusers- or kohya-format LoRA file into the spatial U-Net (diffusers' own loader), at `scale`."""
    load_lora_file(model.unet, path, adapter_name="user_lora", scale=scale)


def load_video_model(base, motion: str | None, lora: str | None, lora_scale: float, motion_scale: float = 1.0):
    """The VideoUNet in eval mode: base U-Net + temporal layers (saved, at `motion_scale`, or fresh) + optional LoRA.
    Fresh layers are the identity, so they are switched off (motion scale 0): the same frames without their work."""
    device, dtype = base.unet.device, base.unet.dtype
    model = load_motion(motion, base.unet, prediction_type=base.prediction_type) if motion else inflate_unet(base.unet)
    model.set_motion_scale(motion_scale if motion else 0.0)
    if lora:
        load_lora(model, lora, lora_scale)
    return model.to(device=device, dtype=dtype).eval()  # new temporal / LoRA layers come in float32
