"""`generate` beyond one prompt: prompt travel on the toy model, and many videos (prompts x seeds) per call."""

import json

import numpy as np
import pytest

from ldm_video.cli import main
from ldm_video.errors import LdmVideoError
from ldm_video.infer.prompts import PromptSchedule, clip_weights, output_path, parse_seeds
from ldm_video.infer.video_io import read_video
from ldm_video.toy import TOY_BASE
from ldm_video.toy.metrics import analyse_video

TOY = ["--base", str(TOY_BASE), "--frames", "16", "--clip-frames", "8", "--steps", "10", "--guidance", "5",
       "--height", "64", "--width", "64", "--no-progress"]


def _toy(tmp_path, name, *extra):
    out = tmp_path / name
    assert main(["generate", *TOY, "--prompt", "a red circle moving right", *extra, "--out", str(out)]) == 0
    analyses = analyse_video(read_video(out))
    return [a.colour for a in analyses], np.array([a.centroid for a in analyses])


@pytest.mark.slow
def test_prompt_travel_switches_colour_at_the_scheduled_clip(tmp_path):
    """Clips of 8, seam drop 1: clip 1's new frames start at output frame 8, where the prompt switches."""
    _, stay = _toy(tmp_path, "red")
    travel = ["--prompt-at", "8", "a blue circle moving right"]
    colours, switch = _toy(tmp_path, "switch", *travel, "--prompt-edit", "0")
    assert colours == ["red"] * 8 + ["blue"] * 8
    colours, edited = _toy(tmp_path, "edited", *travel)  # default --prompt-edit 0.5: layout from the first prompt
    assert colours == ["red"] * 8 + ["blue"] * 8
    # before the switch nothing changes; after it, the edited video keeps the red video's positions far better
    assert np.abs(switch[:8] - stay[:8]).max() == 0 and np.abs(edited[:8] - stay[:8]).max() == 0
    moved = np.linalg.norm(switch[8:] - stay[8:], axis=1).mean()
    kept = np.linalg.norm(edited[8:] - stay[8:], axis=1).mean()
    assert kept < 0.7 * moved, (kept, moved)  # measured 5.3 vs 12.7 px
    sidecar = json.loads((tmp_path / "edited.json").read_text())
    assert sidecar["prompt_schedule"] == [{"frame": 0, "prompt": "a red circle moving right"},
                                          {"frame": 8, "prompt": "a blue circle moving right"}]
    assert sidecar["prompt_edit"] == 0.5 and sidecar["seed"] == 0


def test_many_videos_one_model_load(tiny_base, tmp_path, monkeypatch):
    import ldm_video

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n\n# a comment\na blue square\n")
    loads = []
    real = ldm_video.load_base
    monkeypatch.setattr(ldm_video, "load_base", lambda *a, **k: loads.append(a) or real(*a, **k))
    common = ["generate", "--base", tiny_base, "--frames", "4", "--clip-frames", "4", "--steps", "2",
              "--height", "16", "--width", "16", "--no-progress"]
    assert main([*common, "--prompts", str(prompts), "--seeds", "3-4", "--out", str(tmp_path / "v.mp4")]) == 0
    assert len(loads) == 1  # the model is loaded once for all four videos
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("v-"))
    assert names == [f"v-p{i:03d}-s{s}.{ext}" for i in (0, 1) for s in (3, 4) for ext in ("json", "mp4")]
    side = json.loads((tmp_path / "v-p001-s4.json").read_text())
    assert side["prompt"] == "a blue square" and side["seed"] == 4 and side["video"] == "v-p001-s4.mp4"
    # each video is the one a single call with that prompt and seed makes
    assert main([*common, "--prompt", "a blue square", "--seed", "4", "--out", str(tmp_path / "single")]) == 0
    assert main([*common, "--prompts", str(prompts), "--seeds", "4", "--out", str(tmp_path / "batch")]) == 0
    np.testing.assert_array_equal(read_video(tmp_path / "single"), read_video(tmp_path / "batch-p001-s4"))


@pytest.mark.parametrize("flags, words", [
    (["--prompt", "x", "--prompts", "p.txt"], "one of them"),
    ([], "give --prompt"),
    (["--prompts", "missing.txt"], "cannot read"),
    (["--prompt", "x", "--prompt-at", "99", "y"], "inside the video"),
    (["--prompt", "x", "--prompt-at", "two", "y"], "must be an integer"),
    (["--prompt", "x", "--prompt-blend", "2"], "need --prompt-at"),
    (["--prompt", "x", "--seeds", "5-2"], "not a seed or a range"),
    (["--prompt", "x", "--seeds", "1,1"], "given twice"),
])
def test_bad_batch_flags_are_one_line_errors(tiny_base, tmp_path, capsys, monkeypatch, flags, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.txt").write_text("a\n")
    code = main(["generate", "--base", tiny_base, "--frames", "4", *flags, "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and words in err[-1], err
    assert not (tmp_path / "x.mp4").exists()


def test_schedule_arithmetic():
    s = PromptSchedule.build("a", [("8", "b"), ("20", "c")], 0, 40)
    assert [s.index_at(f) for f in (0, 7, 8, 19, 20, 39)] == [0, 0, 1, 1, 2, 2]
    starts = [0, 8, 15, 22, 29]  # clips of 8, seam drop 1
    assert clip_weights(s, starts) == [{0: 1.0}, {1: 1.0}, {1: 1.0}, {2: 1.0}, {2: 1.0}]
    blended = clip_weights(PromptSchedule.build("a", [("8", "b")], 2, 40), starts)
    expected = [{0: 1.0}, {0: 2 / 3, 1: 1 / 3}, {0: 1 / 3, 1: 2 / 3}, {1: 1.0}, {1: 1.0}]
    assert [set(b) for b in blended] == [set(e) for e in expected]
    assert all(b[k] == pytest.approx(e[k]) for b, e in zip(blended, expected) for k in e)
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    assert output_path("out/v.mp4", 2, 5, batch=True).name == "v-p002-s5.mp4"
    assert output_path("frames", 0, 1, batch=True).name == "frames-p000-s1"
    assert output_path("v.mp4", 0, 0, batch=False).name == "v.mp4"
    with pytest.raises(LdmVideoError, match="given twice"):
        PromptSchedule.build("a", [("8", "b"), ("8", "c")], 0, 40)


def _attn_motion(base, out):
    import torch

    from ldm_video import VideoUNetConfig, inflate_unet, load_base, save_temporal

    torch.manual_seed(0)
    model = inflate_unet(load_base(base, components=("unet",)).unet, VideoUNetConfig(temporal_layers="attn"))
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_temporal(model, out)
    model.motion.save_pretrained(out / "adapter")
    return out


@pytest.mark.slow
def test_extend_freenoise_is_diffusers_own(tiny_base, tmp_path, capsys):
    """--extend freenoise gives exactly what AnimateDiffPipeline.enable_free_noise gives with the same settings."""
    import torch
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

    from ldm_video import load_base

    motion = _attn_motion(tiny_base, tmp_path / "motion")
    flags = ["generate", "--base", tiny_base, "--motion", str(motion), "--prompt", "a red circle", "--frames", "12",
             "--clip-frames", "4", "--overlap", "2", "--steps", "2", "--height", "16", "--width", "16",
             "--extend", "freenoise", "--seed", "3", "--no-progress"]
    assert main([*flags, "--out", str(tmp_path / "ours")]) == 0
    base = load_base(tiny_base)
    pipe = AnimateDiffPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=base.unet,
                               motion_adapter=MotionAdapter.from_pretrained(motion / "adapter"),
                               scheduler=DDIMScheduler.from_config(base.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    pipe.enable_free_noise(context_length=4, context_stride=2)
    frames = pipe("a red circle", num_frames=12, height=16, width=16, num_inference_steps=2, guidance_scale=7.5,
                  generator=torch.Generator().manual_seed(3), output_type="np").frames[0]
    theirs = (frames * 255).round().astype(np.uint8)
    ours = read_video(tmp_path / "ours")
    assert ours.shape == (12, 16, 16, 3) and np.abs(ours.astype(int) - theirs).max() <= 1
    assert json.loads((tmp_path / "ours.json").read_text())["extend"] == "freenoise"
    # what FreeNoise has no place for is refused in one line
    assert main([*flags, "--pns-alpha", "2", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "do not apply to --extend freenoise" in capsys.readouterr().err
    from ldm_video import VideoUNetConfig, inflate_unet, save_temporal

    save_temporal(inflate_unet(load_base(tiny_base, components=("unet",)).unet,
                               VideoUNetConfig(temporal_layers="attn+conv")), tmp_path / "conv")
    assert main([*flags[:4], str(tmp_path / "conv"), *flags[5:], "--out", str(tmp_path / "x.mp4")]) == 2
    assert "no place for VidRD temporal convolutions" in capsys.readouterr().err.strip().splitlines()[-1]
