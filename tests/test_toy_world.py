"""The toy world: deterministic, captioned, inside the frame, written in the training data-folder format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ldm_video.toy import world


def test_same_seed_same_video_other_seed_other_video():
    a, b, c = world.sample(5, 8), world.sample(5, 8), world.sample(6, 8)
    assert a.frames.dtype == np.uint8 and a.frames.shape == (8, 64, 64, 3)
    assert np.array_equal(a.frames, b.frames) and a.caption == b.caption
    assert not np.array_equal(a.frames, c.frames)


def test_captions_parse_back_and_cover_the_world():
    captions = world.all_captions()
    assert len(set(captions)) == 60
    assert "a red circle moving left" in captions and "a blue square bouncing" in captions
    for caption in captions:
        colour, shape, motion = world.parse_caption(caption)
        assert world.caption_for(colour, shape, motion) == caption
    with pytest.raises(ValueError, match="colour"):
        world.parse_caption("a circle moving left")


@pytest.mark.parametrize("frames", [24, 64])
@pytest.mark.parametrize("motion", world.MOTIONS)
def test_motion_follows_the_caption_and_stays_inside(motion, frames):
    """Also for videos too long for min_speed (64 frames): those move slower, never out of the frame."""
    config = world.WorldConfig()
    for seed in range(5):
        item = world.sample(seed, frames, caption=f"a green triangle moving {motion}".replace("moving bouncing",
                                                                                          "bouncing"))
        track = world.centres(item.spec)  # (f, 2)
        r = item.spec.extent / 2
        assert track.min() >= config.margin + r - 1e-9 and track.max() <= config.size - config.margin - r + 1e-9
        steps = np.diff(track, axis=0)  # (f-1, 2)
        np.testing.assert_allclose(np.linalg.norm(steps, axis=1), item.spec.speed, rtol=1e-9)  # constant speed
        if motion == "bouncing":
            assert np.all(steps[:, 0] == 0)
        else:
            assert np.all(steps @ np.array(world.DIRECTIONS[motion]) > 0)


def test_stream_is_deterministic():
    s1, s2 = world.stream(3, 4), world.stream(3, 4)
    for _ in range(3):
        a, b = next(s1), next(s2)
        assert a.caption == b.caption and np.array_equal(a.frames, b.frames)


@pytest.mark.parametrize("captions", ["txt", "jsonl"])
def test_write_folder_in_training_format(tmp_path, captions):
    from ldm_video.infer.video_io import read_video

    out = world.write_folder(tmp_path / "toy", count=3, num_frames=6, seed=1, captions=captions, progress=False)
    videos = sorted(out.glob("*.mp4"))
    assert len(videos) == 3 and not list(out.glob("*.tmp*"))
    if captions == "txt":
        texts = [v.with_suffix(".txt").read_text().strip() for v in videos]
    else:
        rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
        assert [r["file_name"] for r in rows] == [v.name for v in videos]
        texts = [r["text"] for r in rows]
    expected = world.stream(1, 6)
    for video, text in zip(videos, texts):
        item = next(expected)
        assert text == item.caption
        frames = read_video(video)
        assert frames.shape == (6, 64, 64, 3)
        assert np.abs(frames.astype(int) - item.frames.astype(int)).mean() < 3  # near-lossless (crf 12, 4:4:4)
    meta = json.loads((out / "toy_world.json").read_text())
    assert meta["seed"] == 1 and len(meta["videos"]) == 3


def test_cli_world(tmp_path, capsys):
    from ldm_video.cli import main

    assert main(["toy", "world", str(tmp_path / "w"), "--count", "2", "--frames", "4", "--captions", "jsonl"]) == 0
    assert len(list((tmp_path / "w").glob("*.mp4"))) == 2 and (tmp_path / "w" / "metadata.jsonl").exists()
    assert main(["toy", "world", str(tmp_path / "x"), "--count", "0"]) == 2
    assert "--count" in capsys.readouterr().err
    assert main(["toy", "world", str(tmp_path / "b"), "--count", "3", "--frames", "2", "--shapes", "bar", "diamond"]) == 0
    captions = [t.read_text() for t in sorted((tmp_path / "b").glob("*.txt"))]
    assert len(captions) == 3 and all(world.parse_caption(c)[1] in ("bar", "diamond") for c in captions)


def test_a_restricted_world_draws_only_what_it_is_given():
    """The demo's one-motion data: one motion, one shape held out; the full world draws as it always did."""
    config = world.WorldConfig(motions=("right",), shapes=("circle", "square"), min_speed=0.5, max_speed=1.0)
    specs = [world.sample(seed, 8, config).spec for seed in range(60)]
    assert {s.motion for s in specs} == {"right"} and {s.shape for s in specs} == {"circle", "square"}
    assert {s.colour for s in specs} == set(world.COLOURS)
    assert all(0.5 <= s.speed <= 1.0 for s in specs)
    assert world.sample(3, 8, world.WorldConfig()).caption == world.sample(3, 8).caption
    with pytest.raises(ValueError, match="motions"):
        world.WorldConfig(motions=("sideways",))
    with pytest.raises(ValueError, match="shapes"):
        world.WorldConfig(shapes=())


def test_the_extra_shapes_are_drawn_only_when_named_and_cover_what_they_should():
    """Diamond and bar (for a five-shape base) cover half the square of their extent, centred on the ground truth;
    the full world never draws them, so every seed draws what it always did."""
    assert not {world.sample(seed, 2).spec.shape for seed in range(200)} & set(world.EXTRA_SHAPES)
    # what the full world drew before the extra shapes existed (captions and pixel sums of seeds 0-2, pinned then)
    assert [world.sample(seed, 4).caption for seed in range(3)] == [
        "a blue square moving up", "a yellow square moving down", "a blue circle moving left"]
    sums = [int(world.sample(seed, 4).frames.astype(np.int64).sum()) for seed in range(3)]
    assert np.allclose(sums, [11252310, 1355181, 11068105], rtol=1e-6, atol=0), sums
    config = world.WorldConfig(shapes=world.ALL_SHAPES)
    assert {world.sample(seed, 2, config).spec.shape for seed in range(200)} == set(world.ALL_SHAPES)
    for shape in world.EXTRA_SHAPES:
        cov = world._coverage(shape, 30.3, 33.7, 20.0, config)
        assert cov.sum() == pytest.approx(200.0, rel=0.01)  # 20 * 20 / 2
        ys, xs = np.mgrid[0:64, 0:64] + 0.5
        assert (cov * xs).sum() / cov.sum() == pytest.approx(30.3, abs=0.1)
        assert (cov * ys).sum() / cov.sum() == pytest.approx(33.7, abs=0.1)
    bar = world._coverage("bar", 32, 32, 20.0, config) > 0.5
    assert bar.any(axis=0).sum() == 20 and bar.any(axis=1).sum() == 10
    assert world.parse_caption("a green diamond pacing") == ("green", "diamond", "pacing")
    assert len(world.all_captions(world.ALL_SHAPES)) == 100 and len(world.all_captions()) == 60


@pytest.mark.parametrize("motion", world.LASTING_MOTIONS)
def test_lasting_motions_go_on_inside_the_frame_with_their_velocity(motion):
    """Orbiting and pacing never leave the frame however long the video; `velocities` is each frame's motion."""
    config = world.WorldConfig(motions=(motion,), min_speed=0.5, max_speed=1.0)
    for seed in range(4):
        item = world.sample(seed, 400, config)
        assert item.caption.endswith(motion) and world.parse_caption(item.caption)[2] == motion
        track, velocity = world.centres(item.spec, config), world.velocities(item.spec, config)  # (f, 2) each
        r = item.spec.extent / 2
        assert track.min() >= config.margin + r - 1e-9 and track.max() <= config.size - config.margin - r + 1e-9
        steps = np.diff(track, axis=0)  # (f-1, 2)
        assert np.allclose(np.linalg.norm(velocity, axis=1), item.spec.speed)
        if motion == "orbiting":  # constant radius about the centre, clockwise on screen, at the world's speed
            radius = np.linalg.norm(track - config.size / 2, axis=1)
            assert np.ptp(radius) < 1e-9 and world.MIN_ORBIT_RADIUS <= radius[0]
            np.testing.assert_allclose(np.linalg.norm(steps, axis=1), item.spec.speed, rtol=2e-3)  # chord ~ arc
            cross = (track[:-1, 0] - 32) * steps[:, 1] - (track[:-1, 1] - 32) * steps[:, 0]
            assert np.all(cross > 0)  # turning from +x towards +y (down): clockwise as seen
        else:  # horizontal only, reflecting at the margins: every step but the turns is a full step
            turns = np.flatnonzero(np.sign(steps[1:, 0]) != np.sign(steps[:-1, 0]))
            assert len(turns) >= 2  # 400 frames at >= 0.5 px cross the ~40 px span several times
            short = np.abs(np.abs(steps[:, 0]) - item.spec.speed) > 1e-9
            assert np.all(steps[:, 1] == 0) and short.sum() <= len(turns) + 1  # one shorter step per turn
        cosine = np.sum(steps * velocity[:-1], axis=1) / np.linalg.norm(steps, axis=1) / item.spec.speed
        assert np.mean(cosine > 0.99) > 0.95  # the velocity is where the next step goes (but at a turn)
    assert world.WorldConfig().motions == world.MOTIONS  # the full world draws what it always drew
