"""Toy metrics against ground truth: a perfect video scores perfectly, each defect is caught by its metric."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from ldm_video.toy import metrics, world

CAPTIONS = ["a red circle moving left", "a blue square moving up", "a yellow triangle moving right",
            "a green circle moving down", "a red triangle bouncing"]


def _video(caption: str, num_frames: int = 32, seed: int = 0) -> world.ToySample:
    return world.sample(seed, num_frames, caption=caption)


def test_frame_analysis_reads_every_colour_and_shape():
    for i, caption in enumerate(world.all_captions()[::5]):  # every colour x shape, one motion each
        item = _video(caption, 4, seed=i)
        colour, shape, _ = world.parse_caption(caption)
        for frame, centre in zip(item.frames, world.centres(item.spec)):
            a = metrics.analyse_frame(frame)
            assert a.present and a.colour == colour and a.shape == shape, (caption, a)
            if shape != "triangle":  # a triangle's centroid lies below its box centre
                assert np.abs(np.array(a.centroid) - centre).max() < 0.1


def test_frame_analysis_reads_the_extra_shapes():
    config = world.WorldConfig(shapes=world.EXTRA_SHAPES)
    for seed in range(40):
        item = world.sample(seed, 2, config)
        a = metrics.analyse_frame(item.frames[0])
        assert a.present and a.shape == item.spec.shape, (item.spec, a)


def test_shapes_are_read_as_the_toy_vae_reconstructs_them():
    """What a model can draw is what its VAE decodes: a blurred square's corners round off until its bounding-box
    fill overlaps a circle's. The shape is read from soft coverage, so the shipped toy VAE's reconstructions
    of every colour x shape (latents sampled, seeds apart from those the thresholds were set on) keep their shape
    (the bounding-box fill ratio read 0.86 of these squares as squares)."""
    import torch
    from diffusers import AutoencoderKL

    from ldm_video.toy import TOY_BASE

    vae = AutoencoderKL.from_pretrained(str(TOY_BASE), subfolder="vae").eval()
    torch.manual_seed(0)
    right, total = {s: 0 for s in world.SHAPES}, {s: 0 for s in world.SHAPES}
    for shape in world.SHAPES:
        frames = np.concatenate([world.sample(200 + seed, 1, caption=f"a {colour} {shape} pacing").frames
                                 for colour in world.COLOURS for seed in range(30)])  # (120, 64, 64, 3)
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            y = vae.decode(vae.encode(x).latent_dist.sample()).sample
        decoded = ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        found = [metrics.analyse_frame(frame) for frame in decoded]
        right[shape] = sum(a.present and a.shape == shape for a in found)
        assert not [a.shape for a in found if a.shape in world.EXTRA_SHAPES]  # the three-shape world reads as before
        total[shape] = len(found)
    assert all(right[s] >= 0.95 * total[s] for s in world.SHAPES), (right, total)


def test_empty_frame_has_no_object():
    blank = np.full((64, 64, 3), 128, np.uint8)
    a = metrics.analyse_frame(blank)
    assert not a.present and a.colour is None
    scores = metrics.score_video(np.stack([blank] * 4), "a red circle moving left")
    assert scores.present == 0 and scores.colour == 0 and scores.direction == 0 and not scores.motion_right


@pytest.mark.parametrize("caption", CAPTIONS)
def test_perfect_video_scores_perfectly(caption):
    item = _video(caption)
    s = metrics.score_video(item.frames, caption, clip_frames=8)
    assert (s.present, s.colour, s.shape, s.identity, s.background, s.direction) == (1.0,) * 6
    assert s.motion_right and s.speed_consistency > 0.9
    assert abs(s.mean_speed - item.spec.speed) < 0.05
    assert 0.7 < s.seam_jump < 1.4  # seamless: seam steps like within-clip steps


@pytest.mark.parametrize("caption", CAPTIONS[:4])
def test_shuffled_frames_break_direction_and_speed(caption):
    item = _video(caption)
    shuffled = item.frames[np.random.default_rng(0).permutation(len(item.frames))]
    s = metrics.score_video(shuffled, caption)
    assert s.colour == 1.0 and s.shape == 1.0  # appearance is untouched ...
    assert s.direction < 0.7 and not s.motion_right  # ... the motion is not
    assert s.speed_consistency < 0.5


def test_colour_swap_mid_video_breaks_identity():
    item = _video("a red circle moving left")
    swapped = world.render(replace(item.spec, colour="blue"))
    frames = np.concatenate([item.frames[:16], swapped[16:]])
    s = metrics.score_video(frames, "a red circle moving left")
    assert s.identity == 0.5 and s.colour == 0.5
    assert s.direction == 1.0  # motion is untouched
    shape_swap = np.concatenate([item.frames[:16], world.render(replace(item.spec, shape="square"))[16:]])
    assert metrics.score_video(shape_swap, "a red circle moving left").identity == 0.5


def test_background_flip_mid_video_breaks_background_persistence():
    item = _video("a red circle moving left")
    other = "black" if item.spec.background != "black" else "white"
    flipped = world.render(replace(item.spec, background=other))
    frames = np.concatenate([item.frames[:24], flipped[24:]])  # the last quarter on another background
    s = metrics.score_video(frames, "a red circle moving left")
    assert s.background == 0.75
    assert s.identity == 1.0 and s.direction == 1.0  # the object is untouched


def test_jump_at_seams_is_caught_by_seam_ratio():
    item = _video("a green square moving right", num_frames=32)
    clip = 8
    # every clip restarts 6 px further down: smooth inside clips, a jump at each seam
    jumped = np.concatenate([
        world.render(replace(item.spec, start=(item.spec.start[0] + item.spec.speed * k * clip,
                                               item.spec.start[1] + 6.0 * k - 9.0), num_frames=clip))
        for k in range(4)])
    smooth = metrics.score_video(item.frames, item.caption, clip_frames=clip)
    bad = metrics.score_video(jumped, item.caption, clip_frames=clip)
    assert bad.seam_jump > 3 * smooth.seam_jump and bad.seam_jump > 3
    # the seam position matters: with the wrong clip length, the jumps mostly count as within-clip steps
    assert metrics.score_video(jumped, item.caption, clip_frames=5).seam_jump < bad.seam_jump
    # the seam steps go 6 px down (sideways to "right"): they fail the direction, the within-clip steps pass
    assert smooth.seam_direction == 1.0 and bad.seam_direction == 0.0
    assert bad.direction == pytest.approx(1 - 3 / 31)
    assert metrics.score_video(item.frames, item.caption).seam_direction is None  # no clip layout given


def test_seam_ratio_definition():
    track = np.array([0, 1, 2, 3, 10, 11, 12, 13], dtype=float)[:, None]  # one seam after frame 3
    assert metrics.seam_jump_ratio(track, [0, 4]) == pytest.approx(7.0)
    assert metrics.seam_jump_ratio(track, [0]) is None  # no seam
    # generate's convention: later clips drop their first frames; clips of 4 dropping 2 start at 0, 4, 6
    track = np.array([0, 1, 2, 3, 9, 10, 16, 17], dtype=float)[:, None]
    frames = np.zeros((8, 64, 64, 3), np.uint8)
    assert metrics.seam_jump_ratio(track, [0, 4, 6]) == pytest.approx(6.0)
    assert metrics.score_video(frames, "a red circle moving up", clip_frames=4, seam_drop=2).seam_jump is None


def test_frechet_distance_separates_real_from_broken():
    real_a = [world.sample(i, 12).frames for i in range(24)]
    real_b = [world.sample(1000 + i, 12).frames for i in range(24)]
    frozen = [np.repeat(v[:1], len(v), axis=0) for v in real_b]  # the object never moves
    fd_real = metrics.toy_frechet_distance(real_a, real_b)
    fd_frozen = metrics.toy_frechet_distance(real_a, frozen)
    assert fd_real >= 0 and fd_frozen > 2 * fd_real
    x = np.random.default_rng(0).normal(size=(50, 3))
    assert metrics.frechet_distance(x, x) == pytest.approx(0, abs=1e-5)


def test_cli_metrics_prints_json(tmp_path, capsys):
    from ldm_video.cli import main
    from ldm_video.toy.video import write_video

    item = _video("a yellow triangle moving right", 16)
    path = write_video(tmp_path / "v.mp4", item.frames)
    assert main(["toy", "metrics", str(path), "--caption", item.caption, "--clip-frames", "8"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["caption"] == item.caption and out["colour"] == 1.0 and out["shape"] == 1.0 and out["motion_right"]
    assert main(["toy", "metrics", str(path), "--caption", "a cat"]) == 2
    assert "must name exactly one colour" in capsys.readouterr().err
    assert main(["toy", "metrics", str(tmp_path / "missing.mp4"), "--caption", item.caption]) == 2
    (tmp_path / "v.txt").write_text(item.caption + "\n")  # caption from the same-stem sidecar
    assert main(["toy", "metrics", str(path)]) == 0


def _pacing(seed: int = 0, frames: int = 160) -> world.ToySample:
    config = world.WorldConfig(motions=("pacing",), min_speed=0.75, max_speed=1.0)
    return world.sample(seed, frames, config)


def test_pacing_turns_only_at_the_margins():
    """A rendered pacing video follows its motion at every step, turns included; the same object turning back in
    mid-frame (every step after the turn goes the wrong way), stalling at a margin, jittering at a margin or in
    place does not."""
    item = _pacing()
    s = metrics.score_video(item.frames, item.caption)
    assert s.direction == 1.0 and s.reversals >= 2
    track = world.centres(item.spec)
    mid = int(np.argmin(np.abs(track[:, 0] - 32)))  # a frame near the middle of the frame
    back = np.concatenate([item.frames[:mid + 1], item.frames[mid - 1::-1][:20]])  # turns back in mid-frame
    s_back = metrics.score_video(back, item.caption)
    assert s_back.direction == pytest.approx(1 - 20 / (len(back) - 1), abs=0.01)  # the turn and the 19 after it
    at_wall = int(np.argmin(np.minimum(track[:, 0] - track[:, 0].min(), track[:, 0].max() - track[:, 0])))
    stall = np.concatenate([item.frames[:at_wall + 1], np.repeat(item.frames[at_wall:at_wall + 1], 20, axis=0)])
    s_stall = metrics.score_video(stall, item.caption)
    assert s_stall.direction <= at_wall / (len(stall) - 1) + 1e-9  # the 20 still frames all fail
    # at the margin, away and back again: each step back towards the margin fails
    wall_jitter = np.concatenate([item.frames[:at_wall + 1]] + [item.frames[[at_wall - 2, at_wall]]] * 10)
    s_wall = metrics.score_video(wall_jitter, item.caption)
    assert s_wall.direction == pytest.approx(1 - 10 / (len(wall_jitter) - 1), abs=0.01)
    jitter = np.concatenate([item.frames[mid:mid + 2]] * 10)  # a step right, a step left, ...
    assert metrics.score_video(jitter, item.caption).direction <= 0.1
