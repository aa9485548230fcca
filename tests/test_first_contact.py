"""A newcomer's first hour, end to end through the CLI: defaults that carry from train to export and generate, one
rule for a missing --base, random seeds, --data FILE, outputs checked before work, a quiet export and a
`--help` that says where to start. Each case: the exit code, one line on error, nothing written where it should
not be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ldm_video.cli import main
from ldm_video.train.synthetic import write_test_video

SMALL = ["--frames", "4", "--resolution", "32", "--max-steps", "1", "--images", "off", "--no-progress"]
GEN = ["--prompt", "x", "--steps", "1", "--height", "32", "--width", "32"]


def _err_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "it/s]" not in line]
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def clips12(tmp_path_factory) -> Path:
    """Two 12 fps clips, so what was trained differs from generate's own defaults (8 frames, 8 fps)."""
    d = tmp_path_factory.mktemp("clips12")
    for i in range(2):
        write_test_video(d / f"c{i}.mp4", num_frames=8, height=32, width=32, fps=12, seed=i)
    return d


@pytest.fixture(scope="module")
def default_run(tiny_base, clips12, tmp_path_factory) -> Path:
    """`train` with its defaults (tiny sizes aside)."""
    out = tmp_path_factory.mktemp("runs") / "default"
    assert main(["train", "--base", tiny_base, "--data", str(clips12), "--output-dir", str(out), *SMALL]) == 0
    return out


def test_default_layers_export_to_every_format(default_run, tmp_path, capsys):
    for fmt, out in (("animatediff", tmp_path / "mm.safetensors"), ("motion-adapter", tmp_path / "ma")):
        assert main(["export", "--motion", str(default_run), "--format", fmt, "--out", str(out)]) == 0, fmt
        assert out.exists()
    from diffusers import MotionAdapter

    assert MotionAdapter.from_pretrained(str(tmp_path / "ma")) is not None


def test_generate_takes_clip_length_fps_and_base_from_the_run(default_run, tiny_base, tmp_path, capsys):
    out = tmp_path / "v.mp4"
    assert main(["generate", "--motion", str(default_run), *GEN, "--frames", "6", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "--clip-frames 4 --fps 12 as" in said
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["fps"] == 12 and side["vidrd"]["clip_frames"] == 4 and side["base"] == tiny_base
    import av

    with av.open(str(out)) as container:
        assert float(container.streams.video[0].average_rate) == pytest.approx(12)
    # flags given win
    assert main(["generate", "--motion", str(default_run), *GEN, "--frames", "6", "--clip-frames", "2", "--fps", "5",
                 "--out", str(out)]) == 0
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["fps"] == 5 and side["vidrd"]["clip_frames"] == 2 and "as" not in capsys.readouterr().out.split(")")[-1]


def test_random_seed_is_drawn_and_recorded(tiny_base, tmp_path, capsys):
    out = tmp_path / "v.mp4"
    assert main(["generate", "--base", tiny_base, *GEN, "--frames", "2", "--seed", "-1", "--out", str(out)]) == 0
    seed = json.loads(out.with_suffix(".json").read_text())["seed"]
    assert 0 <= seed < 2**32 and f"random seed {seed}" in capsys.readouterr().out
    assert main(["generate", "--base", tiny_base, *GEN, "--frames", "2", "--seed", str(seed), "--out",
                 str(tmp_path / "again.mp4")]) == 0  # the recorded seed makes the same video
    assert (tmp_path / "again.mp4").read_bytes() == out.read_bytes()
    capsys.readouterr()
    assert main(["generate", "--base", tiny_base, *GEN, "--frames", "2", "--seeds=-1,7,-1", "--out",
                 str(tmp_path / "b.mp4")]) == 0
    names = sorted(p.name for p in tmp_path.glob("b-p000-s*.mp4"))
    seeds = {int(name.split("-s")[1].removesuffix(".mp4")) for name in names}
    assert len(names) == 3 and 7 in seeds
    capsys.readouterr()
    assert main(["generate", "--base", tiny_base, *GEN, "--seed", "-2", "--out", str(tmp_path / "n.mp4")]) == 2
    assert "-1 for a random one" in _err_line(capsys) and not (tmp_path / "n.mp4").exists()


def test_eval_vae_reads_the_base_of_a_train_vae_run(tiny_base, clips12, tmp_path, capsys):
    run = tmp_path / "td"
    assert main(["train-vae", "--kind", "temporal-decoder", "--base", tiny_base, "--data", str(clips12),
                 "--output-dir", str(run), "--frames", "5", "--resolution", "32", "--max-steps", "1",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval-vae", "--vae", str(run), "--data", str(clips12), "--frames", "5", "--resolution", "32",
                 "--clips", "1"]) == 0  # the run folder, as train-vae's last line says, without --base
    table = capsys.readouterr().out
    assert "temporal-decoder" in table and "2d" in table


def _offline(monkeypatch):
    """A machine without a network: the one connection attempt fails at once."""
    import socket

    from huggingface_hub import constants

    from ldm_video import base

    def refuse(*args, **kwargs):
        raise OSError(-2, "Name or service not known")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "create_connection", refuse)
    base.hub_unreachable.cache_clear()
    monkeypatch.setattr(base, "hub_unreachable", base.hub_unreachable.__wrapped__)


@pytest.mark.parametrize("command", ["train", "prepare", "generate", "train-vae", "generate-default"])
def test_an_unreachable_base_is_said_at_once_by_every_command(command, clips12, tmp_path, monkeypatch, capsys):
    _offline(monkeypatch)
    hub_id = "nobody-here/no-such-sd2"
    out = tmp_path / "out"
    argv = {
        "train": ["train", "--base", hub_id, "--data", str(clips12), "--output-dir", str(out), *SMALL],
        "prepare": ["prepare", "--base", hub_id, "--data", str(clips12), "--output-dir", str(out)],
        "generate": ["generate", "--base", hub_id, *GEN, "--out", str(out / "v.mp4")],
        "train-vae": ["train-vae", "--base", hub_id, "--data", str(clips12), "--output-dir", str(out),
                      "--max-steps", "1"],
        "generate-default": ["generate", *GEN, "--out", str(out / "v.mp4")],  # no --base, no --motion
    }[command]
    from huggingface_hub import try_to_load_from_cache

    from ldm_video.base import DEFAULT_BASE

    if command == "generate-default" and isinstance(try_to_load_from_cache(DEFAULT_BASE, "model_index.json"), str):
        pytest.skip("SD 2.1-base is in this machine's Hugging Face cache")
    start = time.perf_counter()
    assert main(argv) == 2
    line = _err_line(capsys)
    assert time.perf_counter() - start < 10  # no retries
    name = DEFAULT_BASE if command == "generate-default" else hub_id
    assert f"{name}: not in the local Hugging Face cache, and the hub cannot be reached" in line
    assert not out.exists()


def test_data_file_trains_alone_or_is_named(tiny_base, clips12, tmp_path, capsys):
    (tmp_path / "c0.txt").write_text("a square moving right")
    clip = tmp_path / "c0.mp4"
    clip.write_bytes((clips12 / "c0.mp4").read_bytes())
    out = tmp_path / "run"
    assert main(["train", "--base", tiny_base, "--data", str(clip), "--output-dir", str(out), *SMALL]) == 0
    assert (out / "temporal_layers.safetensors").is_file()
    notes = tmp_path / "notes.txt"
    notes.write_text("not media")
    assert main(["train", "--base", tiny_base, "--data", str(notes), "--output-dir", str(tmp_path / "r2"), *SMALL]) == 2
    assert "not a video or image file" in _err_line(capsys) and not (tmp_path / "r2").exists()


def test_prepare_checks_its_output_before_scanning(tiny_base, tmp_path, capsys):
    data = tmp_path / "data"
    write_test_video(data / "a.mp4", num_frames=6, height=32, width=32)
    (data / "broken.mp4").write_bytes(b"junk" * 50)  # a scan would warn about it
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["prepare", "--base", tiny_base, "--data", str(data), "--output-dir", str(blocker / "cache")]) == 2
    assert str(blocker) in _err_line(capsys)  # one line: the scan's warnings never came
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main(["prepare", "--base", tiny_base, "--data", str(data), "--output-dir", str(tmp_path / "full")]) == 2
    assert "not empty" in _err_line(capsys)
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_plan_and_train_say_which_formats_the_layers_reach(tiny_base, tmp_path, capsys, caplog):
    from ldm_video.train.config import TrainConfig
    from ldm_video.train.plan import MemoryPlan, format_plan

    plan = MemoryPlan(*([2**30] * 5), trainable_params=1, frozen_params=1)  # the report's last line, not its sums
    assert format_plan(TrainConfig.from_flat(), plan, 24.0).splitlines()[-1].startswith("exports: every format")
    report = format_plan(TrainConfig.from_flat(temporal_layers="attn+conv"), plan, 24.0)
    assert "exports: --temporal-layers attn+conv" in report and "keep the attention only" in report
    caplog.set_level("WARNING")
    (tmp_path / "nothing").mkdir()  # no media: the run stops at its data, after saying what conv cannot reach
    assert main(["train", "--base", tiny_base, "--data", str(tmp_path / "nothing"), "--output-dir",
                 str(tmp_path / "r"), "--temporal-layers", "conv", *SMALL]) == 2
    assert any("cannot hold these layers" in r.getMessage() for r in caplog.records)


def test_help_ends_with_a_first_fine_tune():
    from ldm_video.cli import build_parser

    lines = build_parser("").format_help().strip().splitlines()
    assert [line.split()[1] for line in lines[-4:]] == ["plan", "train", "generate", "export"]
    assert "--config sd21-base-16x256" in lines[-3] and "--motion runs/first" in lines[-1]


@pytest.mark.slow
def test_export_prints_no_third_party_notices(tiny_base, tmp_path):
    """transformers' torchvision notices (seen when a diffusers pipeline is imported) are not the user's business."""
    from ldm_video import VideoUNetConfig, inflate_unet, load_base, save_temporal

    save_temporal(inflate_unet(load_base(tiny_base, components=("unet",)).unet, VideoUNetConfig(lora_rank=2)),
                  tmp_path / "run")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_VERBOSITY")}
    done = subprocess.run([sys.executable, "-m", "ldm_video", "export", "--motion", str(tmp_path / "run"),
                           "--format", "diffusers-lora", "--out", str(tmp_path / "lora")],
                          check=False, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "" and done.stdout.startswith("wrote diffusers-lora")
