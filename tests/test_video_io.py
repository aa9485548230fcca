"""Streaming, atomic video writer (mp4 H.264 / gif / PNG folder) and the reader."""

from __future__ import annotations

import av
import numpy as np
import pytest

from ldm_video.errors import LdmVideoError
from ldm_video.infer.video_io import VideoWriter, output_format, read_video


def frames(n: int, h: int = 32, w: int = 48) -> np.ndarray:
    t = np.arange(n).reshape(n, 1, 1, 1)
    x = np.linspace(0, 255, w).reshape(1, 1, w, 1)
    return np.broadcast_to((x + 8 * t) % 256, (n, h, w, 3)).astype(np.uint8)


def test_mp4_streams_and_renames(tmp_path):
    out = tmp_path / "sub" / "v.mp4"
    w = VideoWriter(out, fps=12, crf=10)
    w.append(frames(5))
    assert not out.exists()  # nothing under the final name until close()
    w.append(frames(7))
    w.close()
    assert out.exists() and not w.tmp.exists()
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 12
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 12
    expected = np.concatenate([frames(5), frames(7)])
    assert np.abs(np.stack(decoded).astype(int) - expected).mean() < 6  # lossy, but close at crf 10


def test_gif_and_png_folder(tmp_path):
    with VideoWriter(tmp_path / "v.gif", fps=8) as w:
        w.append(frames(4))
    assert len(read_video(tmp_path / "v.gif")) == 4
    with VideoWriter(tmp_path / "pngs") as w:
        w.append(frames(3))
        w.append(frames(2))
    back = read_video(tmp_path / "pngs")
    np.testing.assert_array_equal(back, np.concatenate([frames(3), frames(2)]))  # lossless


def test_abort_leaves_nothing(tmp_path):
    out = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError), VideoWriter(out) as w:
        w.append(frames(2))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_bad_outputs(tmp_path):
    with pytest.raises(LdmVideoError, match="unsupported output extension"):
        output_format(tmp_path / "v.avi")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.png").write_bytes(b"")
    with pytest.raises(LdmVideoError, match="not empty"):
        VideoWriter(tmp_path / "full")
    with pytest.raises(LdmVideoError, match="crf"):
        VideoWriter(tmp_path / "v.mp4", crf=99)
