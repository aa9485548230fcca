"""Temporal metrics of generated long videos (SPEC §7): seam jump ratio, flicker, drift.

Pure functions of a uint8 video `(f, h, w, 3)` (or float in [0, 1]) and of where its clips start.
The seam jump ratio tests VidRD's claim (Gu et al., arXiv 2309.03549) that FNR/PNS/DSG make clip
boundaries as smooth as the inside of a clip: 1.0 = seamless, > 1 = visible jumps at seams.
Drift without ground truth: per segment the colour statistics, the border colour (the background, where a scene
has one), flicker and sharpness, and FramePack's start-end contrast |metric(first 15 %) - metric(last 15 %)|
(Zhang & Agrawala 2025).
"""

from __future__ import annotations

import itertools

import numpy as np

from ldm_video.infer.vidrd import clip_starts
from ldm_video.video_metrics import as_float, flicker, frame_differences, seam_ratio


def seam_jump_ratio(video: np.ndarray, starts: list[int]) -> float | None:
    """Mean frame difference across clip seams / mean within clips; None without a seam or a within pair."""
    return seam_ratio(frame_differences(video), starts)


def colour_histogram(frames: np.ndarray, bins: int = 32) -> np.ndarray:
    """Normalised per-channel colour histogram of a stack of frames, shape (3, bins), each row sums to 1."""
    x = as_float(frames)  # (f, h, w, 3)
    hist = np.stack([np.histogram(x[..., ch], bins=bins, range=(0.0, 1.0))[0] for ch in range(3)])  # (3, bins)
    return hist / np.maximum(hist.sum(axis=1, keepdims=True), 1)


def drift(video: np.ndarray, starts: list[int], bins: int = 32) -> list[float]:
    """Colour-histogram distance of clip k from clip 1, for every clip k (total variation, in [0, 1])."""
    x = as_float(video)
    bounds = list(starts) + [x.shape[0]]
    first = colour_histogram(x[bounds[0]:bounds[1]], bins)
    out = []
    for a, b in itertools.pairwise(bounds):
        if b <= a:
            continue
        hist = colour_histogram(x[a:b], bins)
        out.append(float(0.5 * np.abs(hist - first).sum(axis=1).mean()))
    return out


BORDER = 2  # px: the ring of each frame whose mean colour stands for the background


def appearance(frames: np.ndarray) -> dict[str, float]:
    """Drift statistics of a stack of frames, no ground truth needed (pixel values in [0, 1]): mean and std of
    each colour channel, the mean colour of a BORDER-px ring (the background), flicker (mean |x_{t+1} - x_t|)
    and sharpness (mean |horizontal| + |vertical| neighbour difference)."""
    x = as_float(frames)  # (f, h, w, 3)
    ring = np.ones(x.shape[1:3], dtype=bool)
    ring[BORDER:-BORDER, BORDER:-BORDER] = False
    border = x[:, ring].mean(axis=(0, 1))  # (3,)
    sharp = np.abs(np.diff(x, axis=2)).mean() + np.abs(np.diff(x, axis=1)).mean()
    out = {f"mean_{c}": float(v) for c, v in zip("rgb", x.mean(axis=(0, 1, 2)))}
    out.update({f"std_{c}": float(v) for c, v in zip("rgb", x.std(axis=(1, 2)).mean(axis=0))})
    out.update({f"border_{c}": float(v) for c, v in zip("rgb", border)})
    out.update({"flicker": flicker(x), "sharpness": float(sharp)})
    return out


def segment_appearance(video: np.ndarray, segments: int = 8) -> list[dict]:
    """`appearance` of `segments` consecutive, near-equal segments, each with its [start, end) frames."""
    n = len(video)
    edges = np.linspace(0, n, max(1, min(segments, n // 2)) + 1).round().astype(int)
    return [{"start": int(a), "end": int(b), **appearance(video[a:b])} for a, b in itertools.pairwise(edges)]


def start_end_contrast(video: np.ndarray, share: float = 0.15) -> dict:
    """FramePack's drift measure: `appearance` of the first and the last `share` of the video, and |first - last|
    of each (None for a video too short to have both)."""
    k = max(2, round(share * len(video)))
    if 2 * k > len(video):
        return {"first": None, "last": None, "contrast": None}
    first, last = appearance(video[:k]), appearance(video[-k:])
    return {"first": first, "last": last, "contrast": {key: abs(first[key] - last[key]) for key in first}}


def video_metrics(video: np.ndarray, clip_frames: int, stride: int | None = None,
                  starts: list[int] | None = None) -> dict:
    """All of SPEC §7's temporal metrics and the drift per segment, as a JSON-able dict (`starts`: the clip starts
    as recorded, else from clip_frames / stride)."""
    starts = clip_starts(len(video), clip_frames, stride) if starts is None else starts
    return {
        "num_frames": len(video),
        "clip_starts": starts,
        "seam_jump_ratio": seam_jump_ratio(video, starts),
        "flicker": flicker(video),
        "drift": drift(video, starts),
        "segments": segment_appearance(video),
        "start_end": start_end_contrast(video),
    }
