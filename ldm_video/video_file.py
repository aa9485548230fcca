"""The model's pixels as uint8 frames (`to_uint8`, the one conversion), and writing uint8 frames to a video file in
one go with PyAV: the low-level writer of validation mp4s, toy clips and
synthetic test media (which codec each container takes, libx264's settings, display rotation, variable frame
rate). `ldm_video.infer.video_io.VideoWriter` is the streaming writer of `generate`."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from einops import rearrange


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """The one [-1, 1] -> uint8 conversion, channels last: (n, 3, H, W) -> (n, H, W, 3) and (b, 3, f, H, W) ->
    (b, f, H, W, 3), rounded like diffusers' VaeImageProcessor (x / 2 + 0.5, clamped to [0, 1], * 255, round)."""
    x = (pixels.float() / 2 + 0.5).clamp(0, 1)
    pattern = "n c h w -> n h w c" if x.ndim == 4 else "b c f h w -> b f h w c"
    return (rearrange(x, pattern) * 255).round().to(torch.uint8)


# container extension -> codecs to try, best first (PyAV wheels ship libx264 / libvpx; mpeg4 is built in)
CODECS = {
    ".mp4": ("libx264", "mpeg4"),
    ".mov": ("libx264", "mpeg4"),
    ".mkv": ("libx264", "mpeg4"),
    ".avi": ("mpeg4", "mjpeg"),
    ".webm": ("libvpx", "libvpx-vp9", "libaom-av1"),
    ".gif": ("gif",),
}

FORMATS = {".mkv": "matroska"}  # the temporary file has no extension: name the muxer


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 8, crf: int = 18,
                preset: str | None = "ultrafast", pix_fmt: str | None = None, rotation: int = 0,
                ticks: list[int] | None = None) -> Path:
    """Write uint8 (f, h, w, 3) frames to `path` (even h and w), atomically, picking a codec the container takes.
    crf / preset / pix_fmt set libx264 (default 4:2:0 for players; the toy world writes 4:4:4, crf 12).

    Args:
        rotation: a display rotation (counter-clockwise degrees, what phones record for portrait video): the
            frames are stored as given and players turn them by this much (needs PyAV >= 18).
        ticks: per frame, its presentation time in 1/fps units (increasing; default 0, 1, 2, ...): gaps make a
            variable-frame-rate file.
    """
    from ldm_video.files import atomic_write

    path = Path(path)
    suffix = path.suffix.lower()
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (f, h, w, 3), got {frames.dtype} {tuple(frames.shape)}")
    height, width = frames.shape[1:3]

    def write(tmp: Path) -> None:
        import av

        with av.open(str(tmp), mode="w", format=FORMATS.get(suffix, suffix.lstrip("."))) as container:
            stream = add_video_stream(container, suffix, fps, height, width, crf, preset, pix_fmt)
            if rotation % 360:
                _set_rotation(stream, rotation)
            if ticks is not None:
                stream.codec_context.time_base = Fraction(1, fps)
            for i, array in enumerate(frames):  # step: encode one frame
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
                if ticks is not None:
                    frame.pts, frame.time_base = int(ticks[i]), Fraction(1, fps)
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    atomic_write(path, write)
    return path


def add_video_stream(container, suffix: str, fps: float | Fraction, height: int, width: int, crf: int = 18,
                     preset: str | None = None, pix_fmt: str | None = None):
    """The one video stream setup of every writer: the first codec for `suffix` that this PyAV build has, its pixel
    format, and libx264's crf / preset (pix_fmt overrides libx264's 4:2:0)."""
    import av

    codecs = CODECS.get(suffix, ("libx264", "mpeg4"))
    codec = next((c for c in codecs if c in av.codecs_available), None)
    if codec is None:
        raise RuntimeError(f"no encoder for {suffix} in this PyAV build (tried {', '.join(codecs)})")
    stream = container.add_stream(codec, rate=Fraction(fps))
    stream.width, stream.height = width, height
    stream.pix_fmt = "rgb8" if codec == "gif" else ("yuvj420p" if codec == "mjpeg" else "yuv420p")
    if codec == "libx264":
        stream.pix_fmt = pix_fmt or stream.pix_fmt
        stream.options = {"crf": str(crf), **({"preset": preset} if preset else {})}
    return stream


def _set_rotation(stream, degrees: int) -> None:
    """A display matrix; ValueError where PyAV cannot write one (before 18). The `rotate` tag written instead came
    back unturned with each PyAV tried, 12.3 to 17.0 (2026-12-07)."""
    if not hasattr(stream, "set_display_rotation"):
        import av

        raise ValueError(f"PyAV {av.__version__} cannot write a display rotation (PyAV >= 18 can)")
    stream.set_display_rotation(degrees)
