"""Frame-to-frame metrics of a video (SPEC §7), the one home for `ldm-video eval` (`ldm_video.infer.metrics`),
`ldm-video eval-vae` (`ldm_video.vae.metrics`) and the toy world's scores (`ldm_video.toy.metrics`): pure
functions of a uint8 `(f, h, w, 3)` video or a float one in [0, 1], or of per-pair steps.
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


def seam_ratio(steps: np.ndarray, starts: list[int]) -> float | None:
    """Mean of the `steps` that cross a clip seam / mean of the others (the seam jump ratio; 1.0 = seamless).

    `steps[t-1]` is any per-pair change between frames t-1 and t (pixel differences, centroid steps); `starts`
    are the clips' first frames (`ldm_video.infer.vidrd.clip_starts`), so a seam lies before each. NaN steps are
    skipped; None without a seam or a within-clip pair; inf for a jump in an otherwise still video.
    """
    steps = np.asarray(steps, dtype=np.float64)  # (f-1,)
    is_seam = np.isin(np.arange(1, len(steps) + 1), starts)  # (f-1,)
    ok = ~np.isnan(steps)
    seam, within = steps[ok & is_seam], steps[ok & ~is_seam]
    if len(seam) == 0 or len(within) == 0:
        return None
    across, usual = float(seam.mean()), float(within.mean())
    if usual == 0.0:
        return float("inf") if across > 0 else 1.0
    return across / usual
