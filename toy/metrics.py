"""Ground-truth metrics for toy-world videos (SPEC §7 on a world whose answer is known).

Per frame, the object is found by colour segmentation: pixels with chroma (max - min of RGB) above a threshold
are object pixels (the backgrounds are neutral), each is assigned the nearest palette hue, the most common hue
is the object's colour, and its largest 4-connected component is the object. Its shape is read from its soft
coverage (chroma over the object's own chroma, 0-1 per pixel, so the blurred edge a VAE leaves counts for what it
covers): an upright triangle's mass is skewed towards its base (row skewness ~-0.57, circle and square 0), and a
square's chord along its diagonals is sqrt(2) times its chord along the axes (a circle's 1, a diamond's 1/sqrt(2)), and
a bar is twice as wide as it is tall (the others as wide as tall). They are measured on
the frames a model can make, the toy VAE's reconstructions, where a blurred square's bounding-box fill overlaps a
circle's; its position is the coverage-weighted centroid. Per video: presence, colour and shape as captioned,
identity and background persistence, motion direction as captioned, speed consistency, and the seam jump ratio
(SPEC §7) of the centroid track; across video sets, a Frechet distance on simple trajectory and appearance
features (the FVD recipe with hand-made features).
All functions are pure (numpy in, numbers out).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass

import numpy as np

from ldm_video.toy.world import COLOURS, WorldConfig, motion_direction, parse_caption
from ldm_video.video_metrics import seam_ratio

CHROMA_THRESHOLD = 60.0  # an object pixel has max(RGB) - min(RGB) above this (background chroma is ~0)
MIN_AREA = 30  # fewer object pixels than this: the object is absent
# shape thresholds on soft coverage, set between the shapes as the shipped toy VAE reconstructs them (1,280
# frames, benchmarks/RESULTS.md, "Telling a blurred square from a circle"): 1st-99th percentiles of the row
# skewness: triangle -0.50..-0.17, circle -0.13..0.03, square -0.07..0.02; of the diagonal / axis chord ratio:
# circle 1.02..1.13, square 1.09..1.31 (2 % of those frames are on the wrong side: the VAE itself blurs them)
TRIANGLE_SKEW = -0.15  # row skewness of the coverage below this: triangle (rendered -0.57)
SQUARE_DIAGONAL = 1.11  # diagonal / axis chord at or above this: square (rendered 1.37), else circle (1.0)
# the two shapes only a five-shape base draws (world.EXTRA_SHAPES; benchmarks/RESULTS.md, "Five shapes"). Through the
# five-shape toy VAE (1,024 frames) 0.92 of its bars read 1.35 or more across against down, 0-1.2 % of the others
BAR_ASPECT = 1.35  # horizontal / vertical chord at or above this: bar (rendered 2.0, circle / square / diamond 1.0;
# a triangle reads 0.7, and is told by its skew first)
# halfway from a circle's 1.0 to a rendered diamond's 0.71; that VAE blurs diamonds to 0.90-1.06 (a circle's 0.94-1.07),
# so a diamond a model draws through it reads as a circle
DIAMOND_DIAGONAL = 0.85  # diagonal / axis chord below this: diamond
MIN_STEP = 0.1  # pixels; a centroid step shorter than this has no direction
BACKGROUND_TOLERANCE = 30.0  # RGB distance within which a frame's background counts as the video's usual one


def _hue(rgb: np.ndarray) -> np.ndarray:
    """Hue angle in degrees [0, 360) of float RGB (..., 3)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.degrees(np.arctan2(np.sqrt(3.0) * (g - b), 2 * r - g - b)) % 360


_PALETTE_NAMES = list(COLOURS)
_PALETTE_HUES = _hue(np.array([COLOURS[n] for n in _PALETTE_NAMES], dtype=np.float64))  # (k,)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean (h, w) mask."""
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    best, best_size, current = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(mask)):
        if labels[y0, x0]:
            continue
        current += 1
        labels[y0, x0] = current
        queue, size = deque([(y0, x0)]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    queue.append((ny, nx))
        if size > best_size:
            best, best_size = current, size
    return labels == best if best else np.zeros_like(mask)


def _grow(mask: np.ndarray) -> np.ndarray:
    """A boolean (h, w) mask grown by one pixel, 4-connected."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def _soft_coverage(chroma: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """Per pixel, the share of it the object covers, float (h, w) in [0, 1]: chroma over the object's median
    chroma, within two pixels of the object (its blurred edge) and 0 elsewhere."""
    near = _grow(_grow(obj))
    return np.where(near, np.clip(chroma / np.median(chroma[obj]), 0.0, 1.0), 0.0)


def _chord(coverage: np.ndarray, centre: tuple[float, float], angle: float, step: float = 0.25) -> float:
    """Length in px of the object along the line through `centre` (x, y) at `angle`: the line integral of the
    coverage, sampled bilinearly every `step` px (a blurred edge integrates to where the sharp edge was)."""
    h, w = coverage.shape
    t = np.arange(-float(max(h, w)), max(h, w) + step, step)  # (n,)
    x, y = centre[0] - 0.5 + t * np.cos(angle), centre[1] - 0.5 + t * np.sin(angle)  # pixel-centre coordinates
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    x, y = x[inside], y[inside]
    x0, y0 = np.minimum(x.astype(int), w - 2), np.minimum(y.astype(int), h - 2)
    fx, fy = x - x0, y - y0
    c = coverage
    values = ((c[y0, x0] * (1 - fx) + c[y0, x0 + 1] * fx) * (1 - fy)
              + (c[y0 + 1, x0] * (1 - fx) + c[y0 + 1, x0 + 1] * fx) * fy)
    return float(values.sum() * step)


def _shape(coverage: np.ndarray, centroid: tuple[float, float]) -> str:
    """Triangle, bar, square, diamond or circle from the soft coverage (h, w) and its centroid (x, y)."""
    rows = coverage.sum(axis=1)  # (h,) mass per row
    y = np.arange(len(rows)) + 0.5
    mean = (rows @ y) / rows.sum()
    var = (rows @ (y - mean) ** 2) / rows.sum()
    skew = (rows @ (y - mean) ** 3) / rows.sum() / max(var, 1e-9) ** 1.5  # upright triangle ~-0.57
    if skew < TRIANGLE_SKEW:
        return "triangle"
    across, down = _chord(coverage, centroid, 0.0), _chord(coverage, centroid, np.pi / 2)
    if across >= BAR_ASPECT * down:
        return "bar"
    diagonals = _chord(coverage, centroid, np.pi / 4) + _chord(coverage, centroid, 3 * np.pi / 4)
    if diagonals >= SQUARE_DIAGONAL * (across + down):
        return "square"
    return "diamond" if diagonals < DIAMOND_DIAGONAL * (across + down) else "circle"


@dataclass(frozen=True)
class FrameAnalysis:
    """What colour segmentation finds in one frame."""

    present: bool  # an object of at least MIN_AREA pixels was found
    colour: str | None  # nearest palette colour of the object's pixels
    shape: str | None  # one of world.ALL_SHAPES, from the soft coverage (`_shape`)
    centroid: tuple[float, float] | None  # coverage-weighted centre (x, y) in pixels (pixel centres at +0.5)
    area: float  # object pixels
    fill: float  # object pixels / bounding-box pixels
    rgb: tuple[float, float, float] | None  # mean colour of the object's pixels
    background: tuple[float, float, float]  # mean colour of the non-object pixels
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # the object's box (x0, y0, x1, y1), pixel edges, x1 / y1 exclusive


def analyse_frame(frame: np.ndarray) -> FrameAnalysis:
    """Segment the coloured object in one uint8 (h, w, 3) frame."""
    rgb = frame.astype(np.float64)  # (h, w, 3)
    chroma = rgb.max(axis=-1) - rgb.min(axis=-1)  # (h, w)
    coloured = chroma > CHROMA_THRESHOLD
    background = tuple(float(v) for v in (rgb[~coloured].mean(axis=0) if (~coloured).any() else np.zeros(3)))
    if coloured.sum() < MIN_AREA:
        return FrameAnalysis(False, None, None, None, float(coloured.sum()), 0.0, None, background)
    hue_gap = np.abs(_hue(rgb[coloured])[:, None] - _PALETTE_HUES[None, :])  # (n, k)
    nearest = np.minimum(hue_gap, 360 - hue_gap).argmin(axis=1)  # (n,)
    colour_index = Counter(nearest.tolist()).most_common(1)[0][0]
    same = np.zeros_like(coloured)
    same[coloured] = nearest == colour_index
    obj = _largest_component(same)  # (h, w) bool
    area = float(obj.sum())
    if area < MIN_AREA:
        return FrameAnalysis(False, None, None, None, area, 0.0, None, background)
    ys, xs = np.nonzero(obj)
    fill = area / float((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))
    # soft coverage: chroma is proportional to coverage on a neutral background, so weighting the object
    # grown by one pixel (to take in the faint edge pixels) by chroma gives a sub-pixel centroid
    grown = _grow(obj)
    gy, gx = np.nonzero(grown)
    weight = chroma[gy, gx]  # (n,)
    centroid = (float((gx + 0.5) @ weight / weight.sum()), float((gy + 0.5) @ weight / weight.sum()))
    shape = _shape(_soft_coverage(chroma, obj), centroid)
    mean_rgb = tuple(float(v) for v in rgb[obj].mean(axis=0))
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return FrameAnalysis(True, _PALETTE_NAMES[colour_index], shape, centroid, area, fill, mean_rgb, background, box)


def analyse_video(frames: np.ndarray) -> list[FrameAnalysis]:
    """analyse_frame for every frame of uint8 (f, h, w, 3)."""
    return [analyse_frame(frame) for frame in frames]


def centroid_track(analyses: list[FrameAnalysis]) -> np.ndarray:
    """Centroids (x, y) per frame, float (f, 2), NaN where the object is absent."""
    return np.array([a.centroid if a.present else (np.nan, np.nan) for a in analyses], dtype=np.float64)


def seam_jump_ratio(track: np.ndarray, starts: list[int]) -> float | None:
    """Mean |x_{t+1} - x_t| over pairs that cross a clip seam / the same mean within clips (SPEC §7).

    `track` is any per-frame quantity (f, d) (here the centroid); `starts` are the first frames of the clips
    (`ldm_video.infer.vidrd.clip_starts`). 1.0 = seamless; NaN rows (absent object) are skipped; None when there
    is no seam or no within-clip pair (`ldm_video.video_metrics.seam_ratio`).
    """
    track = np.asarray(track, dtype=np.float64).reshape(len(track), -1)  # (f, d)
    return seam_ratio(np.linalg.norm(track[1:] - track[:-1], axis=1), starts)  # steps[t-1] is the pair (t-1, t)


WALL_TOLERANCE = 3.0  # px: a reflecting motion may turn back when the object is this close to its margin
SENSE_STEPS = 4  # a reflecting motion's first sense is the net sense of its first steps along the axis


def motion_steps_ok(motion: str, midpoints: np.ndarray, steps: np.ndarray,
                    wall_gaps: np.ndarray | None = None) -> np.ndarray:
    """Which consecutive centroid steps (s, 2), taken at `midpoints` (s, 2), follow the ground-truth motion -> bool (s,).

    A step counts when it is longer than MIN_STEP and its component along the motion's direction at that place
    (`world.motion_direction`: the caption's direction, or the clockwise tangent for orbiting) exceeds its
    sideways component, i.e. it is within 45 degrees of it. The reflecting motions (bouncing: vertical, pacing:
    horizontal) turn back only at the margins, away from the margin: a step counts when it runs along their axis in
    the ground truth's sense, that of the first SENSE_STEPS steps until the object turns back within WALL_TOLERANCE
    of a margin (`wall_gaps` (s,): px between its box and the nearer margin along the axis, from `wall_gaps`;
    default: a box of the world's largest extent around the midpoint), then away from that margin, and in mid-frame
    the sense of the step before. So a stall or a jitter fails, a turn in mid-frame fails with every step after it
    until the object reaches a margin (an object that goes back and forth in a third of the frame does not pace),
    and so does jittering at a margin.
    """
    moving = np.linalg.norm(steps, axis=1) > MIN_STEP  # (s,)
    if motion in ("bouncing", "pacing"):
        axis = 1 if motion == "bouncing" else 0
        along = steps[:, axis]  # (s,)
        on_axis = moving & (np.abs(along) > np.abs(steps[:, 1 - axis]))
        config = WorldConfig()
        if wall_gaps is None:
            pos, half = midpoints[:, axis], config.max_extent / 2
            wall_gaps = np.minimum(pos - half, config.size - pos - half) - config.margin  # (s,)
        near_wall = np.asarray(wall_gaps) < WALL_TOLERANCE  # (s,)
        ok = np.zeros(len(steps), dtype=bool)
        away = np.where(midpoints[:, axis] < config.size / 2, 1.0, -1.0)  # (s,) sense away from the nearer margin
        axis_steps = np.flatnonzero(on_axis)
        # the ground truth's sense: the net sense of the first few steps, then away from the margin the object last
        # turned at; a turn in mid-frame does not change it, so the steps after one fail until the object reaches a
        # margin, and an object that stays at a margin, jittering towards it and away, fails every step towards it
        first = along[axis_steps[:SENSE_STEPS]]
        expected = float(np.sign(first.sum()) or np.sign(first[0])) if len(first) else 0.0
        last = 0.0  # sense of the last step along the axis
        for i in axis_steps:
            sense = np.sign(along[i])
            if near_wall[i] and sense == away[i]:  # turning back at a margin, or leaving it
                expected = sense
            # and, in mid-frame, the way the step before went (a backward jitter fails with the step after it)
            ok[i] = expected == sense and (last in (0.0, sense) or near_wall[i])
            last = sense
        # the frame interval in which the object touches the margin and comes back moves it little: one short step
        # at the wall between moving ones is the turn itself (two or more in a row are a stall)
        turn = near_wall & ~moving & np.r_[True, moving[:-1]] & np.r_[moving[1:], True]
        return ok | turn
    directions = np.array([motion_direction(motion, p) for p in midpoints]).reshape(-1, 2)  # (s, 2) unit
    along = np.sum(steps * directions, axis=1)  # (s,) forwards component
    across = np.abs(steps[:, 0] * directions[:, 1] - steps[:, 1] * directions[:, 0])  # (s,) sideways component
    return moving & (along > across)


def wall_gaps(analyses: list[FrameAnalysis], motion: str) -> np.ndarray:
    """Per frame, px between the object's box and the nearer frame margin along a reflecting motion's axis
    (vertical for bouncing, horizontal for pacing), NaN when the object is absent -> (f,)."""
    config = WorldConfig()
    axis = 0 if motion == "pacing" else 1
    return np.array([min(a.box[axis], config.size - a.box[axis + 2]) - config.margin if a.present else np.nan
                     for a in analyses])


def step_wall_gaps(analyses: list[FrameAnalysis], motion: str) -> np.ndarray:
    """`wall_gaps` per consecutive pair of frames (the nearer of the two) -> (f-1,)."""
    gaps = wall_gaps(analyses, motion)
    return np.fmin(gaps[1:], gaps[:-1])


@dataclass(frozen=True)
class VideoScores:
    """Toy-world scores of one video against its caption; fractions are in [0, 1], 1 is best."""

    frames: int  # frames scored
    present: float  # fraction of frames with the object found
    colour: float  # fraction of frames whose object has the captioned colour
    shape: float  # fraction of frames whose object has the captioned shape
    identity: float  # fraction of present frames with the video's most common (colour, shape)
    background: float  # fraction of frames whose background is within BACKGROUND_TOLERANCE of the median one
    direction: float  # fraction of steps moving as captioned (`motion_steps_ok`: straight and orbiting within
    #                   45 degrees of the direction there; bouncing / pacing: along their axis, turning only at
    #                   the margins)
    reversals: int  # sign changes of the motion along the vertical (horizontal for pacing): reflections
    speed_consistency: float  # 1 - std / mean of centroid step lengths, clipped to [0, 1]
    mean_speed: float  # mean centroid step length in pixels per frame
    seam_jump: float | None  # seam jump ratio of the centroid track (None without clip_frames)
    seam_direction: float | None  # fraction of the steps that cross a clip seam moving as captioned (None
    #                               without clip_frames or seams)
    motion_right: bool  # direction >= 0.8 (and, for bouncing, vertical steps dominate)

    def as_dict(self) -> dict:
        return asdict(self)


def score_video(frames: np.ndarray, caption: str, clip_frames: int | None = None,
                seam_drop: int = 0, starts: list[int] | None = None) -> VideoScores:
    """Score uint8 (f, h, w, 3) frames against a toy caption ('a red circle moving left').

    Args:
        clip_frames: frames of the first clip of a long video (as given to `ldm-video generate`); with it the
            seam jump ratio is measured. Every later clip adds clip_frames - seam_drop frames.
        starts: the clips' first frames as recorded (a `generate` sidecar's clip_starts), instead of the two above.
    """
    colour, shape, motion = parse_caption(caption)
    analyses = analyse_video(frames)
    return score_analyses(analyses, colour, shape, motion, clip_frames, seam_drop, starts)


def score_analyses(analyses: list[FrameAnalysis], colour: str, shape: str, motion: str,
                   clip_frames: int | None = None, seam_drop: int = 0,
                   starts: list[int] | None = None) -> VideoScores:
    """score_video on already analysed frames."""
    from ldm_video.infer.vidrd import clip_starts

    n = len(analyses)
    present = [a for a in analyses if a.present]
    identities = Counter((a.colour, a.shape) for a in present)
    identity = identities.most_common(1)[0][1] / len(present) if present else 0.0
    track = centroid_track(analyses)  # (f, 2)
    steps = track[1:] - track[:-1]  # (f-1, 2); steps[t-1] is the pair (t-1, t)
    if starts is None:
        starts = clip_starts(n, clip_frames, clip_frames - seam_drop) if clip_frames else []
    seams = bool(starts)
    valid = ~np.isnan(steps).any(axis=1)  # consecutive pairs where both frames have the object
    crosses = np.isin(np.arange(1, n), starts)[valid]  # (s,) the pair straddles a clip seam
    steps = steps[valid]
    lengths = np.linalg.norm(steps, axis=1)  # (s,)
    seam_direction = None
    if len(steps) == 0:
        direction, reversals, consistency, mean_speed = 0.0, 0, 0.0, 0.0
    else:
        gaps = step_wall_gaps(analyses, motion)[valid]  # (s,)
        good = motion_steps_ok(motion, track[1:][valid] - steps / 2, steps, gaps)  # judged at each step's middle
        direction = float(good.mean())
        seam_direction = float(good[crosses].mean()) if crosses.any() else None
        axis = 0 if motion == "pacing" else 1  # the axis a reflecting motion turns on (vertical for the others)
        senses = np.sign(steps[np.abs(steps[:, axis]) > MIN_STEP, axis])
        reversals = int((senses[1:] != senses[:-1]).sum())
        mean_speed = float(lengths.mean())
        consistency = float(np.clip(1 - lengths.std() / mean_speed, 0, 1)) if mean_speed > MIN_STEP else 0.0
    backgrounds = np.array([a.background for a in analyses], dtype=np.float64)  # (f, 3)
    usual = np.median(backgrounds, axis=0) if n else np.zeros(3)
    steady = float((np.linalg.norm(backgrounds - usual, axis=1) <= BACKGROUND_TOLERANCE).mean()) if n else 0.0
    seam = seam_jump_ratio(track, starts) if seams else None
    return VideoScores(
        frames=n,
        present=len(present) / n if n else 0.0,
        colour=sum(a.colour == colour for a in present) / n if n else 0.0,
        shape=sum(a.shape == shape for a in present) / n if n else 0.0,
        identity=float(identity),
        background=steady,
        direction=direction,
        reversals=reversals,
        speed_consistency=consistency,
        mean_speed=mean_speed,
        seam_jump=seam,
        seam_direction=seam_direction,
        motion_right=direction >= 0.8,
    )


def video_features(frames: np.ndarray) -> np.ndarray:
    """Trajectory and appearance features of one video, float (18,), for the Frechet distance.

    [present rate, mean step dx, dy, mean speed, speed std, centroid mean x, y, centroid std x, y,
     object mean R, G, B, mean area, mean fill, background R, G, B, fraction of frames with the modal identity]
    """
    analyses = analyse_video(frames)
    track = centroid_track(analyses)  # (f, 2)
    steps = track[1:] - track[:-1]  # (f-1, 2)
    steps = steps[~np.isnan(steps).any(axis=1)]
    present = [a for a in analyses if a.present]
    lengths = np.linalg.norm(steps, axis=1) if len(steps) else np.zeros(1)
    mean_step = steps.mean(axis=0) if len(steps) else np.zeros(2)
    pts = track[~np.isnan(track).any(axis=1)]
    centre = pts.mean(axis=0) if len(pts) else np.full(2, 32.0)
    spread = pts.std(axis=0) if len(pts) else np.zeros(2)
    obj_rgb = np.mean([a.rgb for a in present], axis=0) if present else np.zeros(3)
    area = np.mean([a.area for a in present]) if present else 0.0
    fill = np.mean([a.fill for a in present]) if present else 0.0
    bg = np.mean([a.background for a in analyses], axis=0)
    ident = Counter((a.colour, a.shape) for a in present).most_common(1)[0][1] / len(analyses) if present else 0.0
    return np.array([len(present) / len(analyses), *mean_step, lengths.mean(), lengths.std(), *centre, *spread,
                     *obj_rgb, area, fill, *bg, ident], dtype=np.float64)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, ridge: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (n, d): |mu_a-mu_b|^2 + Tr(Sa+Sb-2(SaSb)^1/2).

    Features are first standardised with the mean and std of `features_a` (the reference set), so that
    pixels, colours and ratios weigh alike; `ridge` keeps small-sample covariances positive definite.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)  # (n, d), (m, d)
    mean, std = a.mean(axis=0), a.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    a, b = (a - mean) / std, (b - mean) / std
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)  # (d,)
    d = a.shape[1]
    cov_a = np.cov(a, rowvar=False).reshape(d, d) + ridge * np.eye(d)  # (d, d)
    cov_b = np.cov(b, rowvar=False).reshape(d, d) + ridge * np.eye(d)
    # Tr((Sa Sb)^1/2) = sum sqrt(eig(Sa^1/2 Sb Sa^1/2)), all symmetric PSD
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # (d, d)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def toy_frechet_distance(real_videos: list[np.ndarray], generated_videos: list[np.ndarray]) -> float:
    """Frechet distance between real and generated toy videos (each uint8 (f, h, w, 3)) on video_features."""
    if len(real_videos) < 2 or len(generated_videos) < 2:
        raise ValueError("the Frechet distance needs at least 2 videos in each set")
    real = np.stack([video_features(v) for v in real_videos])  # (n, 18)
    gen = np.stack([video_features(v) for v in generated_videos])  # (m, 18)
    return frechet_distance(real, gen)
