"""SPEC §7 metrics on hand-built videos whose answers are known, and the `eval` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ldm_video.cli import main
from ldm_video.infer.metrics import drift, flicker, seam_jump_ratio, video_metrics
from ldm_video.infer.video_io import VideoWriter
from ldm_video.infer.vidrd import clip_starts


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


def test_eval_without_a_sidecar_assumes_generates_default_layout(tmp_path, capsys):
    from ldm_video.infer import eval as eval_cli

    assert (eval_cli.DEFAULT_CLIP_FRAMES, eval_cli.DEFAULT_SEAM_DROP) == (8, 4)
    with VideoWriter(tmp_path / "v") as w:
        w.append(ramp_video(22))
    assert main(["eval", str(tmp_path / "v")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clip_starts"] == [0, 8, 12, 16, 20] and report["layout"] == "defaults (no sidecar)"


@pytest.mark.parametrize("order", ["forward", "reversed"])
def test_eval_places_the_seams_where_generate_made_them(tiny_base, tmp_path, capsys, order):
    """generate records its clip starts in the sidecar; eval with no flags reads them (forward order drops the
    M = 2 prompt frames of every later clip, VidRD's reversed order one)."""
    out = tmp_path / "v.mp4"
    assert main(["generate", "--base", tiny_base, "--prompt", "a cat", "--frames", "13", "--clip-frames", "4",
                 "--steps", "1", "--height", "16", "--width", "16", "--reuse-order", order, "--out", str(out),
                 "--no-progress"]) == 0
    capsys.readouterr()
    recorded = json.loads(out.with_suffix(".json").read_text())["clip_starts"]
    assert recorded == ([0, 4, 6, 8, 10, 12] if order == "forward" else [0, 4, 7, 10])
    assert main(["eval", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clip_starts"] == recorded and report["layout"] == str(out.with_suffix(".json"))
    assert main(["eval", str(out), "--clip-frames", "4", "--seam-drop", "0"]) == 0  # flags win
    assert json.loads(capsys.readouterr().out)["clip_starts"] == [0, 4, 8, 12]
    out.with_suffix(".json").write_text("{not json")
    assert main(["eval", str(out)]) == 2
    assert "not a readable generate sidecar" in capsys.readouterr().err


def test_start_end_contrast_and_segments_see_a_darkening_video():
    from ldm_video.infer.metrics import segment_appearance, start_end_contrast

    video = np.stack([np.full((8, 8, 3), 200 - t, np.uint8) for t in range(100)])  # 1 level darker per frame
    report = start_end_contrast(video)
    assert report["contrast"]["border_r"] == pytest.approx(85 / 255, abs=1e-6)  # frames 0-14 vs 85-99
    assert report["contrast"]["sharpness"] == 0 and report["last"]["flicker"] == pytest.approx(1 / 255, rel=1e-5)
    segments = segment_appearance(video, 4)
    assert [s["start"] for s in segments] == [0, 25, 50, 75]
    assert np.diff([s["mean_g"] for s in segments]) == pytest.approx([-25 / 255] * 3, abs=1e-5)
    assert start_end_contrast(video[:3])["contrast"] is None
