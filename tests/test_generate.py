"""`ldm-video generate` end to end on the tiny SD 2.1-shaped model: the issue's command, outputs, errors."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ldm_video.cli import main
from ldm_video.errors import LdmVideoError
from ldm_video.infer.video_io import read_video

DONE_WHEN = ["--prompt", "a red square moving right", "--frames", "40", "--clip-frames", "8", "--overlap", "4",
             "--steps", "4", "--height", "32", "--width", "32"]


def randomise_temporal(model, seed: int = 0) -> None:
    """Give every temporal parameter random values so that frames really interact (trained-like, not identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.temporal_modules().values():
            for p in module.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)


@pytest.fixture(scope="module")
def motion_dir(tiny_base, tmp_path_factory):
    """A save_temporal folder of random (non-identity) temporal layers for the tiny base."""
    from ldm_video import inflate_unet, load_base, save_temporal

    model = inflate_unet(load_base(tiny_base, components=("unet",)).unet)
    randomise_temporal(model)
    out = tmp_path_factory.mktemp("motion")
    save_temporal(model, out)
    return str(out)


def mp4_frames(path) -> np.ndarray:
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.mark.parametrize("with_motion", [False, True])
def test_done_when_command_writes_40_frame_mp4(tiny_base, motion_dir, tmp_path, with_motion):
    out = tmp_path / "v.mp4"
    extra = ["--motion", motion_dir] if with_motion else []
    assert main(["generate", "--base", tiny_base, *extra, *DONE_WHEN, "--out", str(out), "--no-progress"]) == 0
    frames = mp4_frames(out)
    assert frames.shape == (40, 32, 32, 3)
    assert frames.std() > 1  # not a blank video
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.json", "v.mp4"]  # the settings sidecar, no temporary


def test_motion_changes_the_video_and_seed_is_reproducible(tiny_base, motion_dir, tmp_path):
    args = ["generate", "--base", tiny_base, "--prompt", "a cat", "--frames", "6", "--clip-frames", "4",
            "--overlap", "2", "--steps", "2", "--height", "16", "--width", "16", "--no-progress"]
    for name, extra in [("a", []), ("b", []), ("m", ["--motion", motion_dir]), ("s", ["--seed", "1"])]:
        assert main([*args, *extra, "--out", str(tmp_path / name)]) == 0
    a, b, m, s = (read_video(tmp_path / n) for n in "abms")  # lossless PNG folders
    assert a.shape == (6, 16, 16, 3)
    np.testing.assert_array_equal(a, b)  # same seed, same video
    assert np.abs(a.astype(int) - m).max() > 0  # the saved temporal layers are used
    assert np.abs(a.astype(int) - s).max() > 0  # another seed, another video


def test_motion_scale_zero_is_the_image_model_and_is_recorded(tiny_base, motion_dir, tmp_path, capsys):
    """--motion-scale 0 turns the saved temporal layers off (the video of fresh ones, to float rounding), another
    scale changes the video, the sidecar records it, and FreeNoise (diffusers' pipeline) refuses it."""
    args = ["generate", "--base", tiny_base, "--prompt", "a cat", "--frames", "6", "--clip-frames", "4",
            "--overlap", "2", "--steps", "2", "--height", "16", "--width", "16", "--no-progress"]
    runs = {"fresh": [], "zero": ["--motion", motion_dir, "--motion-scale", "0"], "one": ["--motion", motion_dir],
            "two": ["--motion", motion_dir, "--motion-scale", "2"]}
    for name, extra in runs.items():
        assert main([*args, *extra, "--out", str(tmp_path / name)]) == 0
    fresh, zero, one, two = (read_video(tmp_path / n).astype(int) for n in runs)
    assert np.abs(fresh - zero).max() <= 1  # the image model, up to a rounding of the last level
    assert np.abs(one - zero).max() > 5 and np.abs(two - one).max() > 5
    assert json.loads((tmp_path / "two.json").read_text())["motion_scale"] == 2.0
    assert main([*args, "--motion", motion_dir, "--extend", "freenoise", "--motion-scale", "2", "--out",
                 str(tmp_path / "fn.mp4")]) == 2
    assert "--motion-scale do not apply to --extend freenoise" in capsys.readouterr().err


def test_save_latents_decode_to_the_written_frames(tiny_base, tmp_path):
    from ldm_video import load_base
    from ldm_video.video_file import to_uint8

    out, lat = tmp_path / "frames", tmp_path / "z.safetensors"
    assert main(["generate", "--base", tiny_base, "--prompt", "x", "--frames", "10", "--clip-frames", "4",
                 "--overlap", "2", "--seam-drop", "1", "--steps", "2", "--height", "16", "--width", "16",
                 "--scheduler", "euler", "--out", str(out), "--save-latents", str(lat), "--no-progress"]) == 0
    latents = load_file(str(lat))["latents"]
    assert latents.shape == (1, 4, 10, 2, 2)
    vae = load_base(tiny_base, components=("vae",)).vae
    with torch.no_grad():
        frames = vae.decode(latents[0].permute(1, 0, 2, 3) / vae.config.scaling_factor).sample  # (f, 3, H, W)
    np.testing.assert_array_equal(to_uint8(frames).numpy(), read_video(out))


@pytest.mark.parametrize("fmt", ["v.gif", "pngs"])
def test_other_output_formats(tiny_base, tmp_path, fmt):
    assert main(["generate", "--base", tiny_base, "--prompt", "x", "--frames", "5", "--clip-frames", "4",
                 "--steps", "1", "--height", "16", "--width", "24", "--out", str(tmp_path / fmt),
                 "--extend", "independent", "--scheduler", "pndm", "--no-progress"]) == 0
    assert read_video(tmp_path / fmt).shape == (5, 16, 24, 3)


@pytest.mark.parametrize("flags, message", [
    (["--height", "30"], "multiples of 8"),
    (["--extend", "independent", "--overlap", "2"], "only apply to --extend vidrd"),
    (["--extend", "independent", "--reuse-order", "forward"], "only apply to --extend vidrd"),
    (["--overlap", "4", "--clip-frames", "4", "--frames", "8"], "overlap must be in"),
    (["--lora", "missing.safetensors"], "no such LoRA file"),
    (["--motion", "missing_dir"], "no such --motion folder"),
    (["--dtype", "fp16", "--device", "cpu"], "fp16 needs a GPU"),
    (["--out", "v.avi"], "unsupported output extension"),
    (["--save-latents", "z.pt"], "name it *.safetensors"),
    (["--negative-prompt", "blurry", "--guidance", "1"], "--negative-prompt needs classifier-free guidance"),
    (["--lora-scale", "0.5"], "--lora-scale needs --lora"),
    (["--motion-scale", "1.5"], "--motion-scale needs --motion"),
    (["--motion-scale", "-1"], "--motion-scale must be a number >= 0"),
    (["--motion-scale", "nan"], "--motion-scale must be a number >= 0"),
    (["--noise-alpha", "2"], "no effect with --noise-prior iid"),
])
def test_bad_input_is_one_line_error(tiny_base, tmp_path, capsys, flags, message):
    args = ["generate", "--base", tiny_base, "--prompt", "x", "--steps", "1", "--height", "16", "--width", "16",
            "--out", str(tmp_path / "v.mp4"), "--no-progress"]
    assert main([*args, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "v.mp4").exists()


def test_bf16_runs_with_temporal_layers_cast(tiny_base, motion_dir, tmp_path):
    """New temporal layers are built in float32; generate casts them to the weights' dtype."""
    args = ["generate", "--base", tiny_base, "--motion", motion_dir, "--prompt", "x", "--frames", "6",
            "--clip-frames", "4", "--steps", "2", "--height", "16", "--width", "16", "--no-progress"]
    assert main([*args, "--dtype", "bf16", "--out", str(tmp_path / "bf16")]) == 0
    assert main([*args, "--dtype", "fp32", "--out", str(tmp_path / "fp32")]) == 0
    bf16, fp32 = read_video(tmp_path / "bf16").astype(int), read_video(tmp_path / "fp32")
    assert bf16.shape == fp32.shape == (6, 16, 16, 3)
    diff = np.abs(bf16 - fp32).mean()
    assert diff < 8  # same video up to bf16 rounding


def test_threads_flag(tiny_base, tmp_path, capsys):
    args = ["generate", "--base", tiny_base, "--prompt", "x", "--out", str(tmp_path / "v.mp4"), "--no-progress"]
    assert main([*args, "--threads", "-1"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert main([*args, "--threads", "3", "--height", "30"]) == 2  # set before the size is refused
    assert torch.get_num_threads() == 3


def test_one_frame_clips_work_with_default_flags(tiny_base, tmp_path):
    assert main(["generate", "--base", tiny_base, "--prompt", "x", "--frames", "3", "--clip-frames", "1",
                 "--steps", "1", "--height", "16", "--width", "16", "--out", str(tmp_path / "v"), "--no-progress"]) == 0
    assert read_video(tmp_path / "v").shape == (3, 16, 16, 3)


def test_forward_reuse_order_drops_the_prompt_frames_by_default(tiny_base, tmp_path):
    """Forward order: seam drop defaults to M, so every later clip adds N - M new frames."""
    from ldm_video.cli import build_parser
    from ldm_video.infer.generate import build_configs

    args = build_parser().parse_args(["generate", "--base", tiny_base, "--prompt", "x", "--out", "v.mp4",
                                      "--clip-frames", "6", "--reuse-order", "forward"])
    _, video = build_configs(args)
    assert video.vidrd.order == "forward" and video.vidrd.overlap == 3 and video.seam_drop == 3
    out = tmp_path / "v"
    assert main(["generate", "--base", tiny_base, "--prompt", "x", "--frames", "9", "--clip-frames", "6",
                 "--reuse-order", "forward", "--steps", "2", "--height", "16", "--width", "16", "--out", str(out),
                 "--no-progress"]) == 0
    assert read_video(out).shape == (9, 16, 16, 3)  # clips: 6 frames, then 3 new ones


def test_generate_defaults_to_forward_order_and_reversed_keeps_seam_drop_1(tiny_base):
    """Forward order is generate's default (measured better on trained toy models); reversed, VidRD's released
    order, keeps its seam drop of 1."""
    from ldm_video.cli import build_parser
    from ldm_video.infer.generate import build_configs

    common = ["generate", "--base", tiny_base, "--prompt", "x", "--out", "v.mp4", "--clip-frames", "8"]
    _, video = build_configs(build_parser().parse_args(common))
    assert video.vidrd.order == "forward" and video.seam_drop == 4
    _, video = build_configs(build_parser().parse_args([*common, "--reuse-order", "reversed"]))
    assert video.vidrd.order == "reversed" and video.seam_drop == 1
    with pytest.raises(LdmVideoError, match="only apply to --extend vidrd"):
        build_configs(build_parser().parse_args([*common, "--extend", "independent", "--reuse-order", "reversed"]))
