"""Video files at the I/O boundary: uint8 frames `(f, h, w, 3)` <-> mp4 (H.264), gif, or a folder of PNGs.

The writer is streaming: frames are encoded as they are appended, so a long video never sits in memory.
It writes to a temporary name beside the target and renames it into place on `close()`, so an interrupted
run never leaves a half-written file under the asked-for name.
"""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np

from ldm_video.checkpoint import check_writable
from ldm_video.errors import LdmVideoError

FORMATS = ("mp4", "gif", "png")  # by --out extension; a path without an extension is a PNG folder


def output_format(path: str | os.PathLike) -> str:
    """'mp4', 'gif' or 'png' (a folder) from the output path; anything else is a one-line error."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        return "mp4"
    if suffix == ".gif":
        return "gif"
    if suffix == "" or path.is_dir():
        return "png"
    raise LdmVideoError(f"{path}: unsupported output extension {suffix!r}; use .mp4, .gif, or a folder name "
                        f"(no extension) for PNG frames")


def sidecar_path(out: str | os.PathLike) -> Path:
    """Where the settings that made a video are recorded: video.mp4 -> video.json; a PNG folder frames/ ->
    frames.json (`ldm-video generate` writes it, `ldm-video eval` reads it)."""
    out = Path(out)
    return out.with_suffix(".json") if out.suffix in (".mp4", ".gif") else out.with_name(out.name + ".json")


def recorded_clip_starts(video: str | os.PathLike) -> tuple[list[int] | None, Path | None]:
    """The output frames where the clips of a `generate` video begin, as its sidecar records them, and the
    sidecar's path; (None, None) when the video has no sidecar."""
    import json

    from ldm_video.infer.vidrd import clip_starts

    path = sidecar_path(video)
    if not path.is_file():
        return None, None
    try:
        record = json.loads(path.read_text())
        if "clip_starts" in record:
            return [int(s) for s in record["clip_starts"]], path
        clip = int(record["vidrd"]["clip_frames"])  # sidecars from before clip_starts: derived as generate did
        return clip_starts(int(record["frames"]), clip, clip - int(record["seam_drop"])), path
    except (ValueError, KeyError, TypeError) as err:
        raise LdmVideoError(f"{path}: not a readable generate sidecar ({type(err).__name__}: {err}); pass "
                            "--clip-frames and --seam-drop instead") from None


class VideoWriter:
    """Append uint8 frames (f, h, w, 3) to an mp4 / gif / PNG folder; atomic rename on close."""

    def __init__(self, path: str | os.PathLike, fps: float = 8.0, crf: int = 18):
        self.path = Path(path)
        self.format = output_format(self.path)
        if not fps > 0:
            raise LdmVideoError(f"{self.path}: fps must be > 0, got {fps}")
        if not 0 <= crf <= 51:
            raise LdmVideoError(f"{self.path}: crf must be in 0..51 (H.264), got {crf}")
        if self.format == "png" and self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise LdmVideoError(f"{self.path}: output folder exists and is not empty")
        if self.format != "png" and self.path.is_dir():
            raise LdmVideoError(f"{self.path}: is a folder; cannot write a {self.format} file there")
        check_writable(self.path, "video")
        self.fps = Fraction(fps).limit_denominator(1001)
        self.crf = crf
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}{self.path.suffix}")
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None  # (h, w)
        if self.format == "png":
            self.tmp.mkdir()

    def _open(self, height: int, width: int) -> None:
        import av

        from ldm_video.video_file import add_video_stream

        if self.format == "mp4" and (height % 2 or width % 2):
            raise LdmVideoError(f"{self.path}: H.264 needs even frame sizes, got {height}x{width}")
        self._container = av.open(str(self.tmp), mode="w", format=self.format)
        self._stream = add_video_stream(self._container, f".{self.format}", self.fps, height, width, self.crf)

    def append(self, frames: np.ndarray) -> None:
        """Encode uint8 frames (f, h, w, 3) now."""
        import av

        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames (f, h, w, 3), got {frames.dtype} {frames.shape}")
        size = frames.shape[1:3]
        if self._size is None:
            self._size = size
            if self.format != "png":
                self._open(*size)
        elif size != self._size:
            raise ValueError(f"frame size changed from {self._size} to {size}")
        for frame in frames:  # (h, w, 3)
            if self.format == "png":
                from PIL import Image

                Image.fromarray(frame).save(self.tmp / f"frame_{self.frames_written:06d}.png")
            else:
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                for packet in self._stream.encode(video_frame):
                    self._container.mux(packet)
            self.frames_written += 1

    def close(self) -> Path:
        """Flush the encoder and rename the temporary file / folder to the asked-for path."""
        if self.frames_written == 0:
            self.abort()
            raise LdmVideoError(f"{self.path}: no frames to write")
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
        if self.format == "png" and self.path.is_dir():
            self.path.rmdir()  # checked empty in __init__
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the temporary output."""
        if self._container is not None:
            self._container.close()
            self._container = None
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp)
        elif self.tmp.exists():
            self.tmp.unlink()

    def __enter__(self) -> VideoWriter:  # noqa: PYI034 -- typing.Self needs 3.11
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_video(path: str | os.PathLike) -> np.ndarray:
    """All frames of an mp4 / gif / other PyAV-readable file, or of a folder of PNGs, as uint8 (f, h, w, 3)."""
    path = Path(path)
    if not path.exists():
        raise LdmVideoError(f"{path}: no such video file or folder")
    if path.is_dir():
        from PIL import Image

        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
        if not files:
            raise LdmVideoError(f"{path}: folder holds no PNG frames")
        return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])  # (f, h, w, 3)
    import av

    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError) as err:
        raise LdmVideoError(f"{path}: cannot decode as video ({type(err).__name__})") from None
    if not frames:
        raise LdmVideoError(f"{path}: video holds no frames")
    return np.stack(frames)  # (f, h, w, 3)
