"""Configuration of the temporal layers injected into the spatial SD 2.1 U-Net (SPEC §2)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

TEMPORAL_LAYERS = ("attn", "conv", "attn+conv")
MOTION_NORMS = ("all-frames", "per-frame")


@dataclass(frozen=True)
class VideoUNetConfig:
    """Which temporal layers the video U-Net gets, and their sizes. Saved next to every checkpoint."""

    temporal_layers: str = "attn"  # "attn" (AnimateDiff motion modules; every export format), "conv" (VidRD
    # Temp-Conv), or both ("attn+conv": the motion-adapter / animatediff exports drop the convolutions)
    attention_heads: int = 8  # heads of each temporal self-attention (AnimateDiff uses 8)
    attention_layers: int = 1  # transformer blocks per motion module
    conv_depth: int = 4  # L: [GroupNorm, SiLU, Dropout, Conv3d(3,1,1)] layers per temporal-conv stack (VidRD: 4)
    conv_dropout: float = 0.1  # dropout inside the temporal-conv stacks
    max_frames: int = 32  # longest clip the sinusoidal frame positions of temporal attention cover
    mid_block: bool = True  # temporal layers in the U-Net's mid block too
    lora_rank: int = 0  # LoRA rank on the spatial attention projections (to_q, to_k, to_v, to_out.0); 0 = off
    lora_alpha: float = 0.0  # LoRA scaling numerator; 0 means "same as the rank" (scale 1)
    # GroupNorm at the input of each motion module: over all frames of a clip (diffusers' AnimateDiffTransformer3D)
    # or per frame (the original AnimateDiff code, A1111 sd-webui-animatediff, ComfyUI-AnimateDiff-Evolved)
    motion_norm: str = "all-frames"
    # frames given as context (train --context-frames) attend only to each other, never to the frames being
    # denoised, so a sampler computes them once per clip and caches their keys and values (ldm_video.causal)
    context_causal: bool = False

    def __post_init__(self) -> None:
        if self.temporal_layers not in TEMPORAL_LAYERS:
            raise ValueError(f"temporal_layers must be one of {TEMPORAL_LAYERS}, got {self.temporal_layers!r}")
        for name in ("attention_heads", "attention_layers", "conv_depth", "max_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.motion_norm not in MOTION_NORMS:
            raise ValueError(f"motion_norm must be one of {MOTION_NORMS}, got {self.motion_norm!r}")
        if self.lora_rank < 0:
            raise ValueError(f"lora_rank must be >= 0, got {self.lora_rank}")
        if self.context_causal and (self.temporal_layers != "attn" or self.motion_norm != "per-frame"):
            raise ValueError("context_causal needs temporal_layers 'attn' and motion_norm 'per-frame' (temporal "
                             "convolutions and an all-frames GroupNorm mix the given frames with the others), got "
                             f"{self.temporal_layers!r} and {self.motion_norm!r}")

    @property
    def use_attention(self) -> bool:
        return "attn" in self.temporal_layers

    @property
    def use_conv(self) -> bool:
        return "conv" in self.temporal_layers

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VideoUNetConfig:
        """Build from a saved dict; unknown keys are an error (a file from a newer or other tool)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown temporal-layer config keys {sorted(unknown)}")
        return cls(**data)
