"""Reading media files into uint8 RGB frames: videos with decord when installed, else PyAV; images with PIL.

PyAV always works (decord has no macOS / Windows wheels). A clip is chosen by timestamps: frame k of the
clip is the first decoded frame at or after `start + k * step` seconds, where `step` is `frame_stride / fps`
of the file (or `1 / --fps`). This handles variable frame rates and seeks to the key frame before `start`
instead of decoding the file from its beginning.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class VideoInfo:
    """What a probe of a video file found."""

    num_frames: int  # frames in the file (from the container, else counted packets)
    fps: float  # average frame rate
    width: int
    height: int


def decord_available() -> bool:
    """True when decord imports (it is optional: `pip install ldm-video[decord]`)."""
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, frame rate and size of a video; raises ValueError (with the reason) if it is unusable.

    The first frame is decoded, so a file whose header parses but whose data does not is caught here.
    """
    import av

    path = str(path)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            num_frames = int(stream.frames or 0)
            if num_frames <= 0:  # mkv / webm do not store a count: count the packets (no decoding)
                num_frames = sum(1 for packet in container.demux(stream) if packet.size)
                container.seek(0)
            first = next(container.decode(stream), None)
            if first is None:
                raise ValueError("no decodable frames")
            width, height = first.width, first.height
    except av.error.FFmpegError as err:
        raise ValueError(f"cannot decode ({type(err).__name__}: {err.strerror or err})") from None
    except StopIteration:
        raise ValueError("no decodable frames") from None
    if not fps or not math.isfinite(fps):
        fps = 25.0  # e.g. a GIF without delays; only used to turn --fps into a stride
    return VideoInfo(num_frames=num_frames, fps=fps, width=width, height=height)


def clip_times(start_frame: int, num_frames: int, step_frames: float, fps: float) -> list[float]:
    """Target timestamps (seconds) of the clip's frames: frame index start + k * step of a `fps` file."""
    return [(start_frame + k * step_frames) / fps for k in range(num_frames)]


def read_clip_pyav(path: str | os.PathLike, times: list[float], fps: float) -> np.ndarray:
    """Decode the frames nearest to `times` (seconds, increasing) with PyAV -> uint8 (f, h, w, 3)."""
    import av

    out: list[np.ndarray] = []
    half_frame = 0.5 / fps
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = float(stream.time_base) if stream.time_base else 0.0
        origin = float(stream.start_time * tb) if stream.start_time is not None and tb > 0 else 0.0
        if times[0] > 0.5 and tb > 0:
            container.seek(int((times[0] + origin) / tb), stream=stream, backward=True, any_frame=False)
        last = None
        for decoded, frame in enumerate(container.decode(stream)):
            # seconds since the stream's first frame; without a timestamp, the decode position (never seeked)
            t = float(frame.pts * tb) - origin if frame.pts is not None and tb > 0 else decoded / fps
            # a frame within half a frame of a target (or past it) is that target's frame
            while len(out) < len(times) and t >= times[len(out)] - half_frame:
                out.append(frame.to_ndarray(format="rgb24"))  # (h, w, 3)
            last = frame
            if len(out) == len(times):
                break
        if len(out) < len(times):
            if last is None:
                raise ValueError("no decodable frames")
            # the file ended before the last target (frame counts in headers can be off by one or two)
            missing = len(times) - len(out)
            if missing > 2:
                raise ValueError(f"decoded only {len(out)} of {len(times)} clip frames")
            out.extend([last.to_ndarray(format="rgb24")] * missing)
    return np.stack(out)  # (f, h, w, 3)


def read_clip_decord(path: str | os.PathLike, indices: list[int]) -> np.ndarray:
    """Decode frames by index with decord -> uint8 (f, h, w, 3)."""
    import decord

    reader = decord.VideoReader(str(path), num_threads=1)
    indices = [min(i, len(reader) - 1) for i in indices]
    return reader.get_batch(indices).asnumpy()  # (f, h, w, 3)


def read_clip(
    path: str | os.PathLike,
    info: VideoInfo,
    start_frame: int,
    num_frames: int,
    step_frames: float,
    backend: str = "auto",
) -> np.ndarray:
    """The clip starting at frame `start_frame`, every `step_frames` frames -> uint8 (f, h, w, 3).

    Args:
        backend: "auto" (decord when installed, else PyAV), "pyav" or "decord".
    """
    use_decord = backend == "decord" or (backend == "auto" and decord_available()
                                         and Path(path).suffix.lower() != ".gif")
    if use_decord:
        return read_clip_decord(path, [round(start_frame + k * step_frames) for k in range(num_frames)])
    return read_clip_pyav(path, clip_times(start_frame, num_frames, step_frames, info.fps), info.fps)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image as uint8 (h, w, 3): alpha composited on white, greyscale / palette / CMYK converted."""
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img.load()
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, rgba)
        rgb = img.convert("RGB")
    return np.asarray(rgb, dtype=np.uint8)  # (h, w, 3)
