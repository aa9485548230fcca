"""Reading and writing small mp4 files with PyAV (uint8 (f, h, w, 3) at the I/O boundary, SPEC §0)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ldm_video.errors import LdmVideoError


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


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode every frame of a video file: uint8 (f, h, w, 3); one-line LdmVideoError when unreadable."""
    import av

    path = Path(path)
    if not path.is_file():
        raise LdmVideoError(f"{path}: no such video file")
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, ValueError, IndexError) as err:
        raise LdmVideoError(f"{path}: cannot decode video ({type(err).__name__}: {err})") from None
    if not frames:
        raise LdmVideoError(f"{path}: video has no frames")
    return np.stack(frames)  # (f, h, w, 3)
