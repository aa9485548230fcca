"""A procedural text-video world with known ground truth: one coloured shape moving on a plain background.

Shapes (circle, square, triangle) x colours (red, green, blue, yellow) x motions (left, right, up, down,
bouncing) on neutral backgrounds, 64x64 px, captioned "a red circle moving left". Every video is a pure
function of its seed, so a data folder or an in-memory stream can be rebuilt exactly. Motion is at constant
speed along the captioned direction and stays fully inside the frame; "bouncing" moves vertically at constant
speed and reflects off the top and bottom margins (a triangle wave that reverses on frame boundaries).
Two motions can last for ever inside the frame, for long videos (not drawn by the default world):
"orbiting" circles the frame centre clockwise (on screen) at constant speed and radius, "pacing" moves
horizontally and reflects off the left and right margins. Two more shapes are drawn only when a WorldConfig names
them (for a base that knows more shapes than the shipped one): "diamond" (a square turned 45 degrees, its diagonals
the extent) and "bar" (a rectangle as wide as the extent and half as tall). Per frame the ground truth is the object's centre
(`centres`) and velocity (`velocities`).
Shapes are drawn with 8x8 super-sampled coverage, so sub-pixel motion is smooth.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ldm_video.checkpoint import atomic_write

SHAPES = ("circle", "square", "triangle")  # what the full world draws
EXTRA_SHAPES = ("diamond", "bar")  # drawn only when a WorldConfig names them, so every seed draws what it always drew
ALL_SHAPES = SHAPES + EXTRA_SHAPES
# colour name -> RGB; hues 0/60/120/240 degrees, far apart and far from the neutral backgrounds
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "yellow": (225, 205, 35),
    "green": (40, 175, 60),
    "blue": (45, 75, 220),
}
MOTIONS = ("left", "right", "up", "down", "bouncing")  # what the full world draws
# motions that never leave the frame however long the video: drawn only when a WorldConfig names them, so every
# seed of the full world draws what it always drew
LASTING_MOTIONS = ("orbiting", "pacing")
ALL_MOTIONS = MOTIONS + LASTING_MOTIONS
MIN_ORBIT_RADIUS = 10.0  # px from the frame centre; the largest keeps the whole object inside the margins
# background name -> RGB; neutral (zero chroma), so colour segmentation separates object from background
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"white": (235, 235, 235), "gray": (128, 128, 128), "black": (20, 20, 20)}
# unit direction (dx, dy) in image coordinates (y grows downwards) for the straight motions
DIRECTIONS: dict[str, tuple[float, float]] = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


@dataclass(frozen=True)
class WorldConfig:
    """What the world draws; the defaults are the toy world of the demo and the shipped toy base model."""

    size: int = 64  # frame height and width in pixels
    min_extent: float = 14.0  # smallest object extent (diameter / side / base) in pixels
    max_extent: float = 22.0  # largest object extent in pixels
    margin: float = 2.0  # pixels kept free between the object and the frame border
    min_speed: float = 0.75  # slowest motion in pixels per frame
    max_speed: float = 2.0  # fastest motion in pixels per frame (lowered when the path would leave the frame)
    supersample: int = 8  # coverage is computed on a (size*supersample)^2 grid, then box-averaged
    # what random videos draw from (the demo's one-motion data: motions=("right",), one shape held out);
    # the full world by default, so every seed draws what it always drew
    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = tuple(COLOURS)
    motions: tuple[str, ...] = MOTIONS

    def __post_init__(self) -> None:
        for kind, chosen, names in (("shapes", self.shapes, ALL_SHAPES), ("colours", self.colours, tuple(COLOURS)),
                                    ("motions", self.motions, ALL_MOTIONS)):
            unknown = [c for c in chosen if c not in names]
            if not chosen or unknown:
                raise ValueError(f"{kind} must be a non-empty choice of {', '.join(names)}, got {list(chosen)}")
        if not 0 < self.min_speed <= self.max_speed:
            raise ValueError(f"need 0 < min_speed <= max_speed, got {self.min_speed} and {self.max_speed}")


@dataclass(frozen=True)
class ToySpec:
    """One video of the world: everything needed to draw it, and its caption."""

    shape: str  # one of ALL_SHAPES
    colour: str  # one of COLOURS
    motion: str  # one of MOTIONS
    background: str  # one of BACKGROUNDS
    extent: float  # object extent in pixels
    speed: float  # pixels per frame along the motion
    start: tuple[float, float]  # centre (x, y) in pixels at frame 0
    num_frames: int  # frames in the video
    phase: float = 0.0  # bouncing only: distance already travelled on the reflecting path at frame 0

    @property
    def caption(self) -> str:
        return caption_for(self.colour, self.shape, self.motion)


def caption_for(colour: str, shape: str, motion: str) -> str:
    """The caption of a toy video: 'a red circle moving left' / 'a blue square bouncing' / '... orbiting'."""
    return f"a {colour} {shape} moving {motion}" if motion in DIRECTIONS else f"a {colour} {shape} {motion}"


def canonical_shapes(names: Iterable[str]) -> tuple[str, ...]:
    """The named shapes once each, in ALL_SHAPES order: the order a config draws from (and so its data) does not
    hang on the order they were named in. ValueError for an unknown name."""
    unknown = [n for n in names if n not in ALL_SHAPES]
    if unknown:
        raise ValueError(f"unknown shapes {unknown}; choose from {', '.join(ALL_SHAPES)}")
    return tuple(s for s in ALL_SHAPES if s in names)


def all_captions(shapes: tuple[str, ...] = SHAPES) -> list[str]:
    """Every caption the world can produce with these shapes (4 colours x 3 shapes x 5 motions = 60 by default)."""
    return [caption_for(c, s, m) for c in COLOURS for s in shapes for m in MOTIONS]


def parse_caption(caption: str) -> tuple[str, str, str]:
    """(colour, shape, motion) named in a toy caption; raises ValueError when one is missing."""
    words = caption.lower().replace(",", " ").split()
    found = {}
    for kind, names in (("colour", COLOURS), ("shape", ALL_SHAPES), ("motion", ALL_MOTIONS)):
        hits = [w for w in words if w in names]
        if len(hits) != 1:
            raise ValueError(f"caption {caption!r} must name exactly one {kind} of {', '.join(names)}")
        found[kind] = hits[0]
    return found["colour"], found["shape"], found["motion"]


def sample_spec(rng: np.random.Generator, num_frames: int, config: WorldConfig = WorldConfig(),
                caption: tuple[str, str, str] | None = None) -> ToySpec:
    """Draw a random video spec; `caption` = (colour, shape, motion) fixes the captioned attributes."""
    if caption is None:
        colour = str(rng.choice(list(config.colours)))
        shape = str(rng.choice(config.shapes))
        motion = str(rng.choice(config.motions))
    else:
        colour, shape, motion = caption
    background = str(rng.choice(list(BACKGROUNDS)))
    extent = float(rng.uniform(config.min_extent, config.max_extent))
    lo = config.margin + extent / 2  # centre range that keeps the whole object inside the frame
    hi = config.size - config.margin - extent / 2
    span = hi - lo
    steps = max(num_frames - 1, 1)
    if motion == "bouncing":
        # at least one bounce in the video when it is long enough; the span is a whole number of steps so
        # every step has the same length (reflections fall on frames)
        speed = float(rng.uniform(config.min_speed, config.max_speed)) * 1.5
        n = max(1, round(span / speed))
        speed = span / n
        x = float(rng.uniform(lo, hi))
        phase = int(rng.integers(0, 2 * n)) * speed  # where on the reflecting path frame 0 is, a whole step
        y = _triangle(phase, lo, span)
        return ToySpec(shape, colour, motion, background, extent, speed, (x, y), num_frames, phase)
    if motion == "orbiting":  # any length: constant radius, clockwise on screen, speed in the world's range
        speed = float(rng.uniform(config.min_speed, config.max_speed))
        radius = float(rng.uniform(MIN_ORBIT_RADIUS, max(MIN_ORBIT_RADIUS, config.size / 2 - lo)))
        angle = float(rng.uniform(0, 2 * np.pi))
        centre = config.size / 2
        start = (centre + radius * np.cos(angle), centre + radius * np.sin(angle))
        return ToySpec(shape, colour, motion, background, extent, speed, start, num_frames)
    if motion == "pacing":  # any length: a horizontal triangle wave at constant speed between the margins
        speed = float(rng.uniform(config.min_speed, config.max_speed))
        phase = float(rng.uniform(0, 2 * span))  # where on the reflecting path frame 0 is
        y = float(rng.uniform(lo, hi))
        return ToySpec(shape, colour, motion, background, extent, speed, (_triangle(phase, lo, span), y),
                       num_frames, phase)
    fastest = min(config.max_speed, span / steps)  # the whole path stays inside the frame
    speed = float(rng.uniform(min(config.min_speed, fastest), fastest))  # long videos: slower than min_speed
    dx, dy = DIRECTIONS[motion]
    travel = speed * steps
    along_start = float(rng.uniform(lo, max(lo, hi - travel)))  # position along the motion axis, forwards
    across = float(rng.uniform(lo, hi))
    if dx:
        x = along_start if dx > 0 else config.size - along_start
        return ToySpec(shape, colour, motion, background, extent, speed, (x, across), num_frames)
    y = along_start if dy > 0 else config.size - along_start
    return ToySpec(shape, colour, motion, background, extent, speed, (across, y), num_frames)


def _triangle(distance: float, lo: float, span: float) -> float:
    """Position after travelling `distance` on a segment [lo, lo+span] with reflections at both ends."""
    phase = distance % (2 * span)
    return lo + (phase if phase <= span else 2 * span - phase)


def centres(spec: ToySpec, config: WorldConfig = WorldConfig()) -> np.ndarray:
    """Ground-truth object centre (x, y) per frame, float (f, 2)."""
    t = np.arange(spec.num_frames, dtype=np.float64)  # (f,)
    x0, y0 = spec.start
    if spec.motion == "bouncing":
        lo = config.margin + spec.extent / 2
        span = config.size - config.margin - spec.extent / 2 - lo
        ys = np.array([_triangle(spec.phase + spec.speed * i, lo, span) for i in t])  # (f,)
        return np.stack([np.full_like(t, x0), ys], axis=1)
    if spec.motion == "orbiting":
        centre = config.size / 2
        radius = float(np.hypot(x0 - centre, y0 - centre))
        angle = np.arctan2(y0 - centre, x0 - centre) + spec.speed / radius * t  # (f,) y grows down: clockwise
        return np.stack([centre + radius * np.cos(angle), centre + radius * np.sin(angle)], axis=1)
    if spec.motion == "pacing":
        lo = config.margin + spec.extent / 2
        span = config.size - config.margin - spec.extent / 2 - lo
        xs = np.array([_triangle(spec.phase + spec.speed * i, lo, span) for i in t])  # (f,)
        return np.stack([xs, np.full_like(t, y0)], axis=1)
    dx, dy = DIRECTIONS[spec.motion]
    return np.stack([x0 + dx * spec.speed * t, y0 + dy * spec.speed * t], axis=1)


def velocities(spec: ToySpec, config: WorldConfig = WorldConfig()) -> np.ndarray:
    """Ground-truth velocity (dx, dy) in px per frame at every frame, float (f, 2): the motion's direction at the
    object's position times its speed (at a reflection, the direction it leaves in)."""
    return np.stack([motion_direction(spec.motion, p, config, heading) for p, heading in
                     zip(centres(spec, config), _headings(spec, config))]) * spec.speed  # (f, 2)


def _headings(spec: ToySpec, config: WorldConfig) -> list[float]:
    """+1 / -1 per frame: the sign of the coming step along a reflecting path (bouncing: y, pacing: x)."""
    if spec.motion not in ("bouncing", "pacing"):
        return [1.0] * spec.num_frames
    lo = config.margin + spec.extent / 2
    span = config.size - config.margin - spec.extent / 2 - lo
    phases = (spec.phase + spec.speed * np.arange(spec.num_frames)) % (2 * span)  # (f,)
    return [1.0 if p < span - 1e-9 else -1.0 for p in phases]


def motion_direction(motion: str, position, config: WorldConfig = WorldConfig(), heading: float = 1.0) -> np.ndarray:
    """Unit direction (dx, dy) of `motion` at `position` (x, y): straight motions everywhere the same, orbiting the
    clockwise tangent around the frame centre, bouncing / pacing vertical / horizontal with sign `heading`."""
    if motion in DIRECTIONS:
        return np.array(DIRECTIONS[motion], dtype=np.float64)
    if motion == "orbiting":
        rx, ry = position[0] - config.size / 2, position[1] - config.size / 2
        norm = max(float(np.hypot(rx, ry)), 1e-9)
        return np.array([-ry / norm, rx / norm])  # d/dtheta of (cos, sin): clockwise on screen
    if motion == "bouncing":
        return np.array([0.0, heading])
    if motion == "pacing":
        return np.array([heading, 0.0])
    raise ValueError(f"unknown motion {motion!r}; choose from {', '.join(ALL_MOTIONS)}")


def _coverage(shape: str, cx: float, cy: float, extent: float, config: WorldConfig) -> np.ndarray:
    """Fraction of each pixel covered by the shape, float (h, w) in [0, 1]."""
    s = config.supersample
    grid = (np.arange(config.size * s, dtype=np.float64) + 0.5) / s  # sub-pixel centres
    gx, gy = grid[None, :], grid[:, None]
    r = extent / 2
    if shape == "circle":
        inside = (gx - cx) ** 2 + (gy - cy) ** 2 <= r * r
    elif shape == "square":
        inside = (np.abs(gx - cx) <= r) & (np.abs(gy - cy) <= r)
    elif shape == "triangle":  # upright isosceles, base = height = extent, fills half its bounding box
        top, bottom = cy - r, cy + r
        half_width = (gy - top) / extent * r  # widens linearly from the apex
        inside = (gy >= top) & (gy <= bottom) & (np.abs(gx - cx) <= half_width)
    elif shape == "diamond":  # a square turned 45 degrees, corner to corner = extent
        inside = np.abs(gx - cx) + np.abs(gy - cy) <= r
    elif shape == "bar":  # a horizontal rectangle, extent wide and extent / 2 tall
        inside = (np.abs(gx - cx) <= r) & (np.abs(gy - cy) <= r / 2)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(ALL_SHAPES)}")
    inside = np.broadcast_to(inside, (config.size * s, config.size * s)).astype(np.float32)
    return inside.reshape(config.size, s, config.size, s).mean(axis=(1, 3))  # box-average the sub-pixels


def render_frame(spec: ToySpec, index: int, config: WorldConfig = WorldConfig()) -> np.ndarray:
    """Draw frame `index` of the video alone: uint8 (h, w, 3) (for image training)."""
    bg = np.array(BACKGROUNDS[spec.background], dtype=np.float32)  # (3,)
    fg = np.array(COLOURS[spec.colour], dtype=np.float32)  # (3,)
    cx, cy = centres(spec, config)[index]
    a = _coverage(spec.shape, cx, cy, spec.extent, config)[..., None]  # (h, w, 1)
    return np.rint(bg * (1 - a) + fg * a).astype(np.uint8)  # (h, w, 3)


def render(spec: ToySpec, config: WorldConfig = WorldConfig()) -> np.ndarray:
    """Draw the video: uint8 (f, h, w, 3)."""
    return np.stack([render_frame(spec, i, config) for i in range(spec.num_frames)])  # (f, h, w, 3)


@dataclass(frozen=True)
class ToySample:
    """A rendered toy video with its caption and the spec it was drawn from."""

    frames: np.ndarray  # uint8 (f, h, w, 3)
    caption: str
    spec: ToySpec


def sample(seed: int, num_frames: int = 16, config: WorldConfig = WorldConfig(),
           caption: str | None = None) -> ToySample:
    """The toy video of one seed (optionally with the caption's colour, shape and motion)."""
    rng = np.random.default_rng(seed)
    spec = sample_spec(rng, num_frames, config, parse_caption(caption) if caption else None)
    return ToySample(render(spec, config), spec.caption, spec)


def stream(seed: int, num_frames: int = 16, config: WorldConfig = WorldConfig()) -> Iterator[ToySample]:
    """An endless, deterministic stream of toy videos: item i is `sample(seed * 1_000_003 + i)`."""
    i = 0
    while True:
        yield sample(seed * 1_000_003 + i, num_frames, config)
        i += 1


def write_folder(out: str | os.PathLike, count: int, num_frames: int = 16, seed: int = 0, fps: int = 8,
                 captions: str = "txt", config: WorldConfig = WorldConfig(), progress: bool = True) -> Path:
    """Write `count` toy videos as mp4 (PyAV) with captions, in the training data-folder format.

    Args:
        captions: "txt" (same-stem .txt sidecars) or "jsonl" (metadata.jsonl with file_name and text).
        Also writes toy_world.json: the world config, seed and every clip's ground-truth spec.
    """
    from tqdm import tqdm

    from ldm_video.toy.video import write_video

    if captions not in ("txt", "jsonl"):
        raise ValueError(f"captions must be 'txt' or 'jsonl', not {captions!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, specs = [], []
    items = stream(seed, num_frames, config)
    for i in tqdm(range(count), desc="toy videos", disable=not progress):
        item = next(items)
        name = f"toy_{i:05d}.mp4"
        write_video(out / name, item.frames, fps=fps)
        if captions == "txt":
            _atomic_write(out / f"toy_{i:05d}.txt", item.caption + "\n")
        rows.append({"file_name": name, "text": item.caption})
        specs.append({"file_name": name, **asdict(item.spec)})
    if captions == "jsonl":
        _atomic_write(out / "metadata.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    _atomic_write(out / "toy_world.json", json.dumps(
        {"seed": seed, "num_frames": num_frames, "fps": fps, "config": asdict(config), "videos": specs}, indent=1))
    return out


def _atomic_write(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))
