"""Writing toy clips as near-lossless mp4 (H.264, 4:4:4, so the colour-segmentation metrics see clean edges).

Reading goes through `ldm_video.infer.video_io.read_video`; `VideoWriter` there writes 4:2:0 for players.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 8, crf: int = 12) -> Path:
    """Write uint8 (f, h, w, 3) frames as an H.264 mp4 (written to a temporary name, then renamed)."""
    import av

    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (f, h, w, 3), got {frames.dtype} {tuple(frames.shape)}")
    tmp = path.with_name(path.name + ".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p"  # no chroma subsampling: the toy metrics segment by colour
        stream.options = {"crf": str(crf)}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path
