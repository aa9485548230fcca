"""Frame-to-frame pixel metrics of a video (SPEC §7), the one home for `ldm-video eval` (`ldm_video.infer.metrics`)
and `ldm-video eval-vae` (`ldm_video.vae.metrics`): pure functions of a uint8 `(f, h, w, 3)` video or a float one
in [0, 1].
"""

from __future__ import annotations

import numpy as np


def as_float(video: np.ndarray) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected a video of shape (f, h, w, 3), got {video.shape}")
    if video.dtype == np.uint8:
        return video.astype(np.float32) / 255.0
    return video.astype(np.float32)


def frame_differences(video: np.ndarray) -> np.ndarray:
    """mean |x_{t+1} - x_t| per consecutive pair, shape (f-1,)."""
    x = as_float(video)  # (f, h, w, 3) in [0, 1]
    return np.abs(x[1:] - x[:-1]).mean(axis=(1, 2, 3))  # (f-1,)


def flicker(video: np.ndarray) -> float:
    """Mean |x_{t+1} - x_t| over all consecutive frames (pixel values in [0, 1])."""
    diffs = frame_differences(video)
    return float(diffs.mean()) if diffs.size else 0.0
