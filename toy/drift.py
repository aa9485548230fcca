"""Drift of long toy videos against the toy world's ground truth, segment by segment and start against end.

Long-video generation drifts: the scene changes colour, the object deforms, slows or stalls (StreamingT2V,
Henschel et al. 2024; FramePack, Zhang & Agrawala 2025). FramePack measures drift as the start-end contrast of a
quality metric, |metric(first 15 %) - metric(last 15 %)|; here every metric is read against the toy caption and
the first segment (`ldm_video.toy.metrics` finds the object in each frame):

- present / colour / shape: fraction of frames with the object, of the captioned colour, of the captioned shape;
- identity: fraction of frames whose (colour, shape) is the first segment's most common one;
- background: the segment's mean background colour against the first segment's, mean |difference| over R, G, B
  (grey levels: a grey background 10 levels darker is 10);
- motion: fraction of steps that follow the captioned motion (`metrics.motion_steps_ok`);
- speed: mean step length in px per frame, and its ratio to the first segment's.

Pure functions: uint8 frames (f, h, w, 3) and a caption in, numbers out.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from ldm_video.toy.metrics import (
    FrameAnalysis,
    analyse_video,
    centroid_track,
    motion_steps_ok,
    step_wall_gaps,
)
from ldm_video.toy.world import parse_caption

EDGE_SHARE = 0.15  # FramePack's start-end contrast compares the first and the last 15 % of a video


@dataclass(frozen=True)
class SegmentScores:
    """Toy scores of frames [start, end) of a video, the identity and background against its first segment."""

    start: int  # first frame of the segment
    end: int  # one past its last frame
    present: float  # fraction of frames with the object found
    colour: float  # fraction of frames whose object has the captioned colour
    shape: float  # fraction of frames whose object has the captioned shape
    identity: float  # fraction of frames whose (colour, shape) is the first segment's most common one
    background: float  # mean |difference| over R, G, B of the mean background to the first segment's (grey levels)
    motion: float  # fraction of steps inside the segment that follow the captioned motion
    speed: float  # mean step length, px per frame (steps where the object is found in both frames)
    speed_ratio: float  # speed / the first segment's speed (NaN when the first segment does not move)

    def as_dict(self) -> dict:
        return asdict(self)


def _mean_background(analyses: list[FrameAnalysis]) -> np.ndarray:
    return np.mean([a.background for a in analyses], axis=0)  # (3,)


def _identity(analyses: list[FrameAnalysis]) -> tuple[str, str] | None:
    found = Counter((a.colour, a.shape) for a in analyses if a.present)
    return found.most_common(1)[0][0] if found else None


def _segment(analyses: list[FrameAnalysis], start: int, end: int, colour: str, shape: str, motion: str,
             reference: tuple[tuple[str, str] | None, np.ndarray, float]) -> SegmentScores:
    """Scores of analyses[start:end] against the caption and `reference` (identity, background, speed)."""
    part = analyses[start:end]
    n = len(part)
    identity, background, speed0 = reference
    track = centroid_track(part)  # (n, 2), NaN where absent
    steps = track[1:] - track[:-1]  # (n-1, 2)
    valid = ~np.isnan(steps).any(axis=1)
    lengths = np.linalg.norm(steps[valid], axis=1)  # (s,)
    gaps = step_wall_gaps(part, motion)[valid]  # (s,)
    ok = motion_steps_ok(motion, track[1:][valid] - steps[valid] / 2, steps[valid], gaps)  # (s,)
    speed = float(lengths.mean()) if len(lengths) else 0.0
    return SegmentScores(
        start=start, end=end,
        present=sum(a.present for a in part) / n,
        colour=sum(a.present and a.colour == colour for a in part) / n,
        shape=sum(a.present and a.shape == shape for a in part) / n,
        identity=sum(a.present and (a.colour, a.shape) == identity for a in part) / n,
        background=float(np.abs(_mean_background(part) - background).mean()),
        motion=float(ok.sum() / max(len(steps), 1)),  # steps with the object missing count as not following
        speed=speed,
        speed_ratio=speed / speed0 if speed0 > 0 else float("nan"),
    )


def _reference(analyses: list[FrameAnalysis], end: int) -> tuple[tuple[str, str] | None, np.ndarray, float]:
    """(identity, mean background, speed) of the first `end` frames."""
    first = analyses[:end]
    track = centroid_track(first)
    steps = track[1:] - track[:-1]
    lengths = np.linalg.norm(steps[~np.isnan(steps).any(axis=1)], axis=1)
    return _identity(first), _mean_background(first), float(lengths.mean()) if len(lengths) else 0.0


def segment_bounds(num_frames: int, segments: int) -> list[tuple[int, int]]:
    """[start, end) of `segments` consecutive, near-equal segments of a video (at least 2 frames each)."""
    segments = max(1, min(segments, num_frames // 2))
    edges = np.linspace(0, num_frames, segments + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def segment_drift(frames: np.ndarray, caption: str, segments: int = 8,
                  analyses: list[FrameAnalysis] | None = None) -> list[SegmentScores]:
    """Scores of `segments` consecutive segments of uint8 (f, h, w, 3) frames, each against the first segment."""
    colour, shape, motion = parse_caption(caption)
    analyses = analyse_video(frames) if analyses is None else analyses
    bounds = segment_bounds(len(analyses), segments)
    reference = _reference(analyses, bounds[0][1])
    return [_segment(analyses, a, b, colour, shape, motion, reference) for a, b in bounds]


def start_end_drift(frames: np.ndarray, caption: str, share: float = EDGE_SHARE,
                    analyses: list[FrameAnalysis] | None = None) -> dict:
    """FramePack's start-end contrast: the first and last `share` of the video scored, and |first - last| per
    metric -> {"first": {...}, "last": {...}, "contrast": {...}} (the last against the first's identity,
    background and speed, so its `background` and `speed_ratio` are already the contrast)."""
    colour, shape, motion = parse_caption(caption)
    analyses = analyse_video(frames) if analyses is None else analyses
    n = len(analyses)
    k = max(2, round(share * n))
    if 2 * k > n:
        raise ValueError(f"a start-end contrast of {share:.0%} needs a video of at least {2 * k} frames, got {n}")
    reference = _reference(analyses, k)
    first = _segment(analyses, 0, k, colour, shape, motion, reference).as_dict()
    last = _segment(analyses, n - k, n, colour, shape, motion, reference).as_dict()
    keys = ("present", "colour", "shape", "identity", "motion", "speed")
    contrast = {key: abs(first[key] - last[key]) for key in keys}
    contrast["background"] = last["background"]
    return {"first": first, "last": last, "contrast": contrast}


# the bar a long video has to clear, last 15 % against the first (README, benchmarks/long_video.py)
DRIFT_LIMITS = {"background": 10.0, "present": 0.95, "colour": 0.95, "identity": 0.9, "motion": 0.8,
                "speed_ratio": (0.75, 1.25)}


def drift_passes(last: dict) -> dict[str, bool]:
    """Which of DRIFT_LIMITS the last segment of `start_end_drift` meets."""
    lo, hi = DRIFT_LIMITS["speed_ratio"]
    return {
        "background": last["background"] <= DRIFT_LIMITS["background"],
        "present": last["present"] >= DRIFT_LIMITS["present"],
        "colour": last["colour"] >= DRIFT_LIMITS["colour"],
        "identity": last["identity"] >= DRIFT_LIMITS["identity"],
        "motion": last["motion"] >= DRIFT_LIMITS["motion"],
        "speed": bool(lo <= last["speed_ratio"] <= hi),
    }
