"""SPEC §7 metrics on hand-built videos whose answers are known, and the `eval` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ldm_video.cli import main
from ldm_video.infer.metrics import clip_starts, drift, flicker, seam_jump_ratio, video_metrics
from ldm_video.infer.video_io import VideoWriter


def ramp_video(num_frames: int, jump_every: int | None = None, jump: int = 0) -> np.ndarray:
    """Frames of constant grey rising by 2 per frame, plus `jump` at every seam."""
    values = []
    v = 10
    for t in range(num_frames):
        if t and jump_every and t % jump_every == 0:
            v += jump
        values.append(v)
        v += 2
    return np.stack([np.full((4, 4, 3), x, np.uint8) for x in values])


def test_clip_starts():
    assert clip_starts(40, 8) == [0, 8, 16, 24, 32]
    assert clip_starts(40, 8, 4) == [0, 8, 12, 16, 20, 24, 28, 32, 36]
    assert clip_starts(5, 8) == [0]


def test_flicker_and_seamless_ratio():
    video = ramp_video(16)
    assert flicker(video) == pytest.approx(2 / 255, rel=1e-5)
    assert seam_jump_ratio(video, clip_starts(16, 8)) == pytest.approx(1.0)


def test_seam_jump_ratio_sees_jumps():
    video = ramp_video(24, jump_every=8, jump=6)  # seam pairs differ by 8, others by 2
    assert seam_jump_ratio(video, clip_starts(24, 8)) == pytest.approx(4.0, rel=1e-5)
    assert seam_jump_ratio(video, [0]) is None  # one clip: no seam


def test_drift_grows_with_colour_change():
    video = np.concatenate([np.full((4, 2, 2, 3), v, np.uint8) for v in (0, 0, 255)])  # 3 clips of 4
    d = drift(video, clip_starts(12, 4))
    assert d == pytest.approx([0.0, 0.0, 1.0])


def test_eval_cli_prints_json(tmp_path, capsys):
    video = ramp_video(24, jump_every=8, jump=30)
    with VideoWriter(tmp_path / "v") as w:  # PNG folder: lossless
        w.append(video)
    assert main(["eval", str(tmp_path / "v"), "--clip-frames", "8", "--seam-drop", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_frames"] == 24
    assert report["seam_jump_ratio"] == pytest.approx(16.0, rel=1e-5)
    assert report["clip_starts"] == [0, 8, 16]
    assert len(report["drift"]) == 3
    assert video_metrics(video, 8)["flicker"] == pytest.approx(report["flicker"])


def test_eval_cli_errors(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.mp4")]) == 2
    assert "missing.mp4" in capsys.readouterr().err
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert main(["eval", str(tmp_path / "bad.mp4")]) == 2
    assert "cannot decode" in capsys.readouterr().err


def test_eval_default_seam_layout_is_generates(tmp_path, capsys):
    from ldm_video.infer import eval as eval_cli
    from ldm_video.infer.generate import DEFAULT_SEAM_DROP

    assert eval_cli.DEFAULT_SEAM_DROP == DEFAULT_SEAM_DROP
    with VideoWriter(tmp_path / "v") as w:
        w.append(ramp_video(22))
    assert main(["eval", str(tmp_path / "v")]) == 0
    assert json.loads(capsys.readouterr().out)["clip_starts"] == [0, 8, 15]  # later clips add 8 - 1 frames
