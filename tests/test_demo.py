"""`ldm-video demo` end to end at toy sizes (the real run is the README's main command, minutes long)."""

import json

import av
import pytest

from ldm_video.cli import main
from ldm_video.demo import DemoConfig, run_demo


@pytest.mark.parametrize("reuse_order", ["reversed", "forward"])
def test_demo_runs_every_step_and_reports(tiny_base, tmp_path, reuse_order):
    cfg = DemoConfig(base=tiny_base, videos=4, steps=2, batch_size=2, long_frames=12, sample_steps=2,
                     prompts=("a red circle moving right",), reuse_order=reuse_order)
    report = run_demo(tmp_path / "demo", cfg, progress=False)
    out = tmp_path / "demo"
    assert json.loads((out / "report.json").read_text())["train"]["steps"] == 2
    for name in ("video_0_tuned.mp4", "video_0_untrained.mp4"):
        with av.open(str(out / name)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 12
    assert (out / "motion_adapter" / "config.json").exists()
    scores = report["videos"]["a red circle moving right"]["tuned"]
    assert scores["frames"] == 12 and 0.0 <= scores["present"] <= 1.0
    assert "moves as captioned" in (out / "report.md").read_text()
    assert report["config"]["reuse_order"] == reuse_order


def test_demo_refuses_a_non_empty_output_and_a_missing_base(tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep me")
    assert main(["demo", "--out", str(tmp_path / "busy")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "busy" / "x").read_text() == "keep me"
    assert main(["demo", "--out", str(tmp_path / "new"), "--base", str(tmp_path / "nowhere")]) == 2
    assert "no toy base model" in capsys.readouterr().err
