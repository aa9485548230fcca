"""Pixel transforms for training samples: resize-and-crop to a resolution, and VidRD pseudo-videos.

Pure functions on float tensors. VidRD (Gu et al., "Reuse and Diffuse", 2023, §3.3) turns still images into
pseudo-videos by random zooming and panning, so image-text pairs can train the temporal layers too; here a
crop box moves and scales linearly from a random start box to a random end box over the frames.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from ldm_video.errors import LdmVideoError


def parse_resolution(value: int | str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """`256`, `"256"`, `"320x512"` (height x width) or `(320, 512)` -> (height, width), multiples of 8."""
    if isinstance(value, (tuple, list)):
        hw = tuple(int(v) for v in value)
    elif isinstance(value, int):
        hw = (value, value)
    else:
        text = str(value).lower().replace(" ", "")
        parts = text.split("x")
        try:
            hw = tuple(int(p) for p in parts)
        except ValueError:
            raise LdmVideoError(f"resolution {value!r}: expected an int like 256 or HxW like 320x512") from None
        if len(hw) == 1:
            hw = (hw[0], hw[0])
    if len(hw) != 2 or min(hw) <= 0:
        raise LdmVideoError(f"resolution {value!r}: expected an int like 256 or HxW like 320x512")
    if hw[0] % 8 or hw[1] % 8:
        raise LdmVideoError(f"resolution {value!r}: height and width must be multiples of 8 (the VAE's factor)")
    return hw  # type: ignore[return-value]


def to_float_frames(frames: np.ndarray) -> torch.Tensor:
    """uint8 (f, h, w, 3) -> float (f, 3, h, w) in [0, 1]."""
    x = torch.from_numpy(np.array(frames, dtype=np.uint8, copy=True))  # (f, h, w, 3) uint8
    return rearrange(x, "f h w c -> f c h w").float().div_(255.0)  # (f, 3, h, w)


def resize_crop(
    frames: torch.Tensor,
    size: tuple[int, int],
    crop: str = "center",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Scale (f, 3, h, w) so it covers `size`, then crop to it (one offset for every frame).

    Args:
        crop: "center" or "random" (offset drawn from `generator`).
    """
    height, width = size
    _, _, h, w = frames.shape
    scale = max(height / h, width / w)
    new_h, new_w = max(height, math.ceil(h * scale - 1e-6)), max(width, math.ceil(w * scale - 1e-6))
    if (new_h, new_w) != (h, w):
        frames = F.interpolate(frames, size=(new_h, new_w), mode="bilinear", antialias=True,
                               align_corners=False)  # (f, 3, new_h, new_w)
    if crop == "random":
        top = int(torch.randint(0, new_h - height + 1, (1,), generator=generator))
        left = int(torch.randint(0, new_w - width + 1, (1,), generator=generator))
    elif crop == "center":
        top, left = (new_h - height) // 2, (new_w - width) // 2
    else:
        raise ValueError(f"crop must be 'center' or 'random', got {crop!r}")
    return frames[:, :, top:top + height, left:left + width].clamp_(0.0, 1.0)  # (f, 3, height, width)


def zoom_pan_video(
    image: torch.Tensor,
    num_frames: int,
    size: tuple[int, int],
    generator: torch.Generator | None = None,
    min_zoom: float = 0.6,
) -> torch.Tensor:
    """VidRD pseudo-video: (3, h, w) in [0, 1] -> (num_frames, 3, H, W), a crop box moving and zooming linearly.

    Args:
        min_zoom: the smallest box side, as a fraction of the largest box of the target's aspect ratio
            that fits in the image (1.0 = pan only when the aspects differ, no zoom).
    """
    height, width = size
    _, h, w = image.shape
    # largest box of the target aspect inside the image, in pixels
    box_h, box_w = (h, h * width / height) if h * width / height <= w else (w * height / width, w)
    # pre-shrink (antialiased) so the smallest box is still >= the output size: bilinear sampling stays sharp
    shrink = min(1.0, max(height / (box_h * min_zoom), width / (box_w * min_zoom)))
    if shrink < 1.0:
        new_h, new_w = max(1, round(h * shrink)), max(1, round(w * shrink))
        image = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear", antialias=True,
                              align_corners=False)[0]  # (3, new_h, new_w)
        box_h, box_w, h, w = box_h * new_h / h, box_w * new_w / w, new_h, new_w
    u = torch.rand(6, generator=generator, dtype=torch.float64)
    zooms = (min_zoom + (1.0 - min_zoom) * u[0], min_zoom + (1.0 - min_zoom) * u[1])  # start, end box scale
    boxes = []  # (centre y, centre x, half height, half width) of the start and end boxes, in pixels
    for z, uy, ux in ((zooms[0], u[2], u[3]), (zooms[1], u[4], u[5])):
        half_h, half_w = box_h * float(z) / 2, box_w * float(z) / 2
        cy = half_h + (h - 2 * half_h) * float(uy)
        cx = half_w + (w - 2 * half_w) * float(ux)
        boxes.append(torch.tensor([cy, cx, half_h, half_w], dtype=torch.float64))
    t = torch.linspace(0.0, 1.0, num_frames, dtype=torch.float64)[:, None]  # (f, 1)
    path = (1 - t) * boxes[0] + t * boxes[1]  # (f, 4) linear pan and zoom
    # affine_grid maps output coords in [-1, 1] to input coords in [-1, 1] (align_corners=False)
    theta = torch.zeros(num_frames, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = path[:, 3] / (w / 2)  # x scale
    theta[:, 0, 2] = path[:, 1] / (w / 2) - 1  # x shift
    theta[:, 1, 1] = path[:, 2] / (h / 2)  # y scale
    theta[:, 1, 2] = path[:, 0] / (h / 2) - 1  # y shift
    grid = F.affine_grid(theta.float(), [num_frames, 3, height, width], align_corners=False)  # (f, H, W, 2)
    frames = image[None].expand(num_frames, -1, -1, -1)  # (f, 3, h, w)
    out = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp_(0.0, 1.0)  # (f, 3, H, W)


def to_model_range(frames: torch.Tensor) -> torch.Tensor:
    """float (f, 3, H, W) in [0, 1] -> (3, f, H, W) in [-1, 1], the layout of `pixel_values`."""
    return rearrange(frames * 2.0 - 1.0, "f c h w -> c f h w").contiguous()  # (3, f, H, W)


def bucket_sizes(resolution: tuple[int, int], step: int = 64, max_ratio: float = 2.0) -> list[tuple[int, int]]:
    """Aspect-ratio buckets: (height, width) sizes, multiples of `step`, with about the pixels of `resolution`.

    For each height (a multiple of `step`) the width is the multiple of `step` nearest area / height; sizes
    with an aspect ratio beyond `max_ratio` are dropped, every size comes with its transpose, and
    `resolution` itself is always one of them. (256 px: 192x320, 256x256, 320x192.)
    """
    area = resolution[0] * resolution[1]
    sizes = {tuple(resolution)}
    h = step
    while h * h <= area * max_ratio:
        w = max(step, round(area / h / step) * step)
        if 1.0 / max_ratio <= w / h <= max_ratio:
            sizes.update({(h, w), (w, h)})
        h += step
    return sorted(sizes)


def nearest_bucket(height: int, width: int, sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest to height x width (in log ratio)."""
    target = math.log(width / height)
    return min(sizes, key=lambda s: (abs(math.log(s[1] / s[0]) - target), -s[0] * s[1]))
