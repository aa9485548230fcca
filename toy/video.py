"""Writing toy clips as near-lossless mp4 (H.264, 4:4:4, so the colour-segmentation metrics see clean edges).

The writer is `ldm_video.video_file.write_video` with these settings; reading goes through
`ldm_video.infer.video_io.read_video`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 8, crf: int = 12) -> Path:
    """Write uint8 (f, h, w, 3) frames as an H.264 4:4:4 mp4 (to a temporary name, then renamed)."""
    from ldm_video.video_file import write_video as write

    return write(path, frames, fps=fps, crf=crf, preset=None, pix_fmt="yuv444p")
