"""Reading media files into uint8 RGB frames: videos with decord when installed, else PyAV; images with PIL.

PyAV always works (decord has no macOS / Windows wheels). Frames come out as players show them: the display
matrix (or, from older FFmpeg, the `rotate` tag) that phones write for portrait video is read once by the probe
and applied to every decoded frame, by either backend (neither applies it itself).

Frame rate policy (docs/data.md, "Variable frame rate"):

- A clip is uniform in time: clip frame k is the source frame nearest to `t0 + k * step` seconds, where `step`
  is `1 / --fps`, or `--frame-stride` frames of the file's rate. The file's rate is its container rate; for a
  file whose frame durations vary (variable frame rate, VFR) it is the rate its steady frames run at, measured
  from the packet timestamps (demuxed, not decoded).
- A clip never repeats a source frame: a window in which two clip frames would fall on the same source frame
  (the source has a gap wider than a step there, or `--fps` is above the file's rate) is not used. A file with
  no such window left is skipped with the reason; a VFR file is named once in a warning at scan time.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
VFR_SPREAD = 1.5  # a file is variable-rate when a frame lasts 1.5x longer (or shorter) than the median frame

logger = logging.getLogger("ldm_video.train.decode")


@dataclass(frozen=True)
class VideoInfo:
    """What a probe of a video file found. Sizes are as displayed (after the file's rotation)."""

    num_frames: int  # frames in the file (from the container, else counted packets)
    fps: float  # the file's rate: container rate, or the steady rate measured from timestamps
    width: int  # displayed width (a 90-degree rotated 640x360 file is 360 wide)
    height: int  # displayed height
    rotation: int = 0  # counter-clockwise degrees (0, 90, 180, 270) that turn decoded frames upright
    mirrored: bool = False  # the display matrix also flips the picture left-right (after the rotation)
    frame_times: tuple[float, ...] | None = None  # VFR files only: each frame's time (s) from the first frame
    rate_range: tuple[float, float] | None = None  # VFR files only: slowest and fastest frame rate (fps)

    @property
    def variable_rate(self) -> bool:
        return self.frame_times is not None


def decord_available() -> bool:
    """True when decord imports (it is optional: `pip install ldm-video[decord]`)."""
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def _display_matrix(frame) -> tuple[float, float, float, float] | None:
    """(a, b, c, d) of a frame's DISPLAYMATRIX side data (FFmpeg's 3x3 int32 matrix, 16.16 fixed point), or None."""
    try:
        side_data = frame.side_data
        # iterating gives the entries up to PyAV 18.1.0 and their types (the Mapping's keys) from 18.1.1 on
        entries = [item if hasattr(item, "type") else side_data[item] for item in side_data]
    except (AttributeError, TypeError):  # a PyAV without frame side data
        return None
    for entry in entries:
        if "DISPLAYMATRIX" not in str(getattr(entry, "type", "")).upper():
            continue
        try:
            raw = bytes(entry)
        except (TypeError, ValueError):
            return None
        if len(raw) < 36:
            return None
        m = struct.unpack("<9i", raw[:36])
        return m[0] / 65536, m[1] / 65536, m[3] / 65536, m[4] / 65536
    return None


def display_orientation(frame, stream) -> tuple[int, bool]:
    """(counter-clockwise degrees in 0/90/180/270, mirrored) that a player applies to `frame` of `stream`.

    The display matrix (what phones and current FFmpeg write) wins; FFmpeg before 7 reported the same thing
    as a `rotate` stream tag (clockwise degrees). Angles off the quarter turns are rounded to the nearest one.
    """
    matrix = _display_matrix(frame)
    if matrix is not None:
        a, b, c, d = matrix
        mirrored = a * d - b * c < 0  # a flip: undo it, what is left is a rotation
        if mirrored:
            a, c = -a, -c
        degrees = math.degrees(math.atan2(-b, a))  # FFmpeg's av_display_rotation_get
        return round(degrees / 90) % 4 * 90, mirrored
    rotation = getattr(frame, "rotation", None)  # PyAV's reading of the same matrix
    if rotation:
        return round(float(rotation) / 90) % 4 * 90, False
    tag = (stream.metadata or {}).get("rotate")
    if tag:
        try:
            return (-round(float(tag) / 90)) % 4 * 90, False
        except ValueError:
            return 0, False
    return 0, False


def orient(frames: np.ndarray, rotation: int, mirrored: bool = False) -> np.ndarray:
    """uint8 (f, h, w, 3) as decoded -> as displayed: turned `rotation` degrees counter-clockwise, then flipped."""
    if rotation % 360:
        frames = np.rot90(frames, k=rotation // 90, axes=(1, 2))  # (f, w, h, 3) for a quarter turn
    if mirrored:
        frames = frames[:, :, ::-1]
    return np.ascontiguousarray(frames)


def _rates_from_times(times: np.ndarray) -> tuple[float, tuple[float, float] | None]:
    """(the file's rate, (slowest, fastest) fps when the frame durations vary) from sorted frame times (s)."""
    durations = np.diff(times)
    durations = durations[durations > 0]
    if durations.size == 0:
        return 0.0, None
    median = float(np.median(durations))
    steady = durations[(durations > median / 1.25) & (durations < median * 1.25)]
    fps = 1.0 / float(steady.mean())  # the mean of the steady frames: ms-rounded timestamps average out
    if durations.max() > VFR_SPREAD * median or durations.min() < median / VFR_SPREAD:
        return fps, (1.0 / float(durations.max()), 1.0 / float(durations.min()))
    return fps, None


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, frame rate, displayed size and rotation of a video; ValueError (with the reason) if unusable.

    The first frame is decoded, so a file whose header parses but whose data does not is caught here. Packet
    timestamps are read (demuxed, without decoding) when the container stores no frame count or its average
    and nominal rates disagree: that is how a variable frame rate shows.
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
            nominal = float(stream.base_rate) if stream.base_rate else 0.0
            num_frames = int(stream.frames or 0)
            times = None
            if num_frames <= 0 or (fps and nominal and abs(fps - nominal) > 0.01 * nominal):
                tb = float(stream.time_base) if stream.time_base else 0.0
                pts = [p.pts for p in container.demux(stream) if p.size]
                num_frames = len(pts)
                if tb > 0 and len(pts) > 2 and all(t is not None for t in pts):
                    times = np.sort(np.asarray(pts, dtype=np.float64)) * tb
                    times -= times[0]
                container.seek(0)
            first = next(container.decode(stream), None)
            if first is None:
                raise ValueError("no decodable frames")
            rotation, mirrored = display_orientation(first, stream)
            width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
    except av.error.FFmpegError as err:
        raise ValueError(f"cannot decode ({type(err).__name__}: {err.strerror or err})") from None
    except StopIteration:
        raise ValueError("no decodable frames") from None
    frame_times, rate_range = None, None
    if times is not None:
        measured, rate_range = _rates_from_times(times)
        fps = measured or fps
        if rate_range is not None:
            frame_times = tuple(float(t) for t in times)
    if not fps or not math.isfinite(fps):
        fps = 25.0  # e.g. a GIF without delays; only used to turn --fps into a stride
    return VideoInfo(num_frames=num_frames, fps=fps, width=width, height=height, rotation=rotation,
                     mirrored=mirrored, frame_times=frame_times, rate_range=rate_range)


def source_times(info: VideoInfo) -> np.ndarray:
    """Each source frame's time in seconds from the first frame: measured (VFR) or frame index / fps."""
    if info.frame_times is not None:
        return np.asarray(info.frame_times, dtype=np.float64)
    return np.arange(info.num_frames, dtype=np.float64) / info.fps


def window_indices(times: np.ndarray, starts: np.ndarray, num_frames: int, step: float) -> np.ndarray:
    """Source frame nearest to `times[start] + k * step` for each start and k -> int (len(starts), num_frames).

    -1 marks a target past the end of the file (more than half a frame after the last frame's time).
    """
    targets = times[starts][:, None] + step * np.arange(num_frames)[None, :]  # (s, f) seconds
    right = np.clip(np.searchsorted(times, targets), 1, len(times) - 1)  # (s, f) first frame at / after
    left = right - 1
    nearest = np.where(targets - times[left] <= times[right] - targets, left, right)  # ties: the earlier frame
    nearest = np.where(targets >= times[-1], len(times) - 1, nearest)
    last_gap = times[-1] - times[-2] if len(times) > 1 else 1.0
    return np.where(targets > times[-1] + 0.5 * last_gap, -1, nearest)


def usable_starts(info: VideoInfo, num_frames: int, step: float) -> np.ndarray:
    """Start frames whose `num_frames`-frame clip at `step` seconds stays in the file and repeats no frame.

    A constant-rate file repeats the same pattern from every start, so one window decides for all of them.
    """
    times = source_times(info)
    if len(times) == 0:
        return np.zeros(0, dtype=np.int64)
    if info.frame_times is None:
        span = window_indices(times, np.zeros(1, dtype=np.int64), num_frames, step)[0]  # (f,)
        if (span < 0).any() or (np.diff(span) <= 0).any():
            return np.zeros(0, dtype=np.int64)
        return np.arange(0, max(0, info.num_frames - int(span[-1])), dtype=np.int64)
    starts = np.arange(len(times), dtype=np.int64)
    idx = window_indices(times, starts, num_frames, step)  # (n, f)
    ok = (idx >= 0).all(axis=1) & (np.diff(idx, axis=1) > 0).all(axis=1)
    return starts[ok]


def read_clip_pyav(path: str | os.PathLike, times: list[float], fps: float, tolerance: float | None = None) -> np.ndarray:
    """Decode the frames at `times` (seconds from the first frame, increasing) with PyAV -> uint8 (f, h, w, 3).

    Target k takes the first decoded frame at or after `times[k] - tolerance` (default half a frame). Two
    targets that fall on one decoded frame (the file's rate varies where the probe did not see it) are kept,
    and the file is named in a warning.
    """
    import av

    out: list[np.ndarray] = []
    tolerance = 0.5 / fps if tolerance is None else tolerance
    repeated = 0
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
            # a frame within the tolerance of a target (or past it) is that target's frame
            taken = 0
            while len(out) < len(times) and t >= times[len(out)] - tolerance:
                out.append(frame.to_ndarray(format="rgb24"))  # (h, w, 3)
                taken += 1
            repeated += max(0, taken - 1)
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
    if repeated:
        logger.warning("%s: the frame rate varies: %d clip frame(s) repeat a source frame", path, repeated)
    return np.stack(out)  # (f, h, w, 3)


def read_clip_decord(path: str | os.PathLike, indices: list[int]) -> np.ndarray:
    """Decode frames by index with decord -> uint8 (f, h, w, 3), as stored (decord ignores the display matrix)."""
    import decord

    reader = decord.VideoReader(str(path), num_threads=1)
    indices = [min(i, len(reader) - 1) for i in indices]
    return reader.get_batch(indices).asnumpy()  # (f, h, w, 3)


def read_clip(
    path: str | os.PathLike,
    info: VideoInfo,
    indices: list[int],
    backend: str = "auto",
) -> np.ndarray:
    """Source frames `indices` (increasing) of a probed video, as displayed -> uint8 (f, h, w, 3).

    Args:
        backend: "auto" (decord when installed, else PyAV), "pyav" or "decord".
    """
    use_decord = backend == "decord" or (backend == "auto" and decord_available()
                                         and Path(path).suffix.lower() != ".gif")
    if use_decord:
        frames = read_clip_decord(path, list(indices))
    else:
        times = source_times_at(info, indices)
        tolerance = None
        if info.frame_times is not None:  # exact frame times: stay well inside the shortest frame
            tolerance = min(0.5 / info.fps, 0.25 / info.rate_range[1])
        frames = read_clip_pyav(path, times, info.fps, tolerance)
    return orient(frames, info.rotation, info.mirrored)


def source_times_at(info: VideoInfo, indices) -> list[float]:
    """The times (seconds from the first frame) of source frames `indices`."""
    if info.frame_times is not None:
        return [info.frame_times[int(i)] for i in indices]
    return [int(i) / info.fps for i in indices]


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
