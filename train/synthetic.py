"""Small synthetic media files (videos with PyAV, images with PIL) for tests, benchmarks and demos.

The picture is a smooth colour gradient with a bright square moving across it, so neighbouring frames
differ a little and a clip has something for temporal layers to learn.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ldm_video.video_file import write_video


def synthetic_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 (f, h, w, 3): a gradient background with a square that moves one step per frame."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 200, size=3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    background = np.stack([base[0] + 50 * yy / height, base[1] + 50 * xx / width,
                           base[2] + 25 * (yy + xx) / (height + width)], axis=-1)  # (h, w, 3)
    side = max(2, min(height, width) // 4)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for i in range(num_frames):  # step: draw frame i
        img = background.copy()
        top = (height - side) // 2
        left = int((width - side) * (i / max(1, num_frames - 1)))
        img[top:top + side, left:left + side] = (250, 250, 250)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def write_test_video(
    path: str | os.PathLike,
    num_frames: int = 12,
    height: int = 48,
    width: int = 64,
    fps: int = 8,
    seed: int = 0,
) -> Path:
    """A synthetic clip (moving square on a gradient) written with PyAV; sizes must be even for yuv420p."""
    return write_video(path, synthetic_frames(num_frames, height, width, seed), fps=fps)


def write_test_image(path: str | os.PathLike, height: int = 40, width: int = 56, mode: str = "RGB",
                     seed: int = 0) -> Path:
    """A synthetic still (one frame of `synthetic_frames`) saved by PIL in `mode` ("RGB", "RGBA", "L", "P")."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(synthetic_frames(1, height, width, seed)[0])
    if mode == "RGBA":
        img = img.convert("RGBA")
        img.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))))
    elif mode != "RGB":
        img = img.convert(mode)
    img.save(path)
    return path
