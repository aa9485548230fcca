"""Drift metrics return the drift injected into rendered long videos: a darkening background, a morphing shape,
an object that slows down; a clean long video shows none."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ldm_video.toy import drift, world

CONFIG = world.WorldConfig(motions=("orbiting",), min_speed=0.5, max_speed=1.0)
FRAMES = 200


def _orbit(seed: int = 0, caption: str = "a red circle orbiting") -> world.ToySample:
    rng = np.random.default_rng(seed)
    spec = replace(world.sample_spec(rng, FRAMES, CONFIG, world.parse_caption(caption)), background="gray")
    return world.ToySample(world.render(spec, CONFIG), spec.caption, spec)


def test_a_rendered_long_video_does_not_drift():
    item = _orbit()
    d = drift.start_end_drift(item.frames, item.caption)
    assert d["first"]["motion"] == 1.0 and d["last"]["motion"] == 1.0
    assert d["last"]["background"] < 0.5 and d["last"]["identity"] == 1.0
    assert d["last"]["speed_ratio"] == pytest.approx(1.0, abs=0.05)
    assert all(drift.drift_passes(d["last"]).values())
    segments = drift.segment_drift(item.frames, item.caption, segments=5)
    assert [(s.start, s.end) for s in segments] == [(0, 40), (40, 80), (80, 120), (120, 160), (160, 200)]
    assert all(s.present == 1.0 and s.colour == 1.0 and s.shape == 1.0 and s.motion == 1.0 for s in segments)


def test_a_darkening_background_is_measured_in_grey_levels():
    item = _orbit()
    frames = item.frames.astype(np.float64)
    grey = np.array(world.BACKGROUNDS["gray"], dtype=np.float64)
    darken = 40.0 * np.arange(FRAMES) / (FRAMES - 1)  # (f,) 0 -> 40 levels darker, linearly
    is_bg = (frames == grey).all(axis=-1)  # (f, h, w) pixels the object does not touch
    frames[is_bg] -= np.repeat(darken, is_bg.reshape(FRAMES, -1).sum(axis=1))[:, None]
    frames = frames.astype(np.uint8)
    d = drift.start_end_drift(frames, item.caption)
    k = round(0.15 * FRAMES)
    expected = darken[-k:].mean() - darken[:k].mean()  # 34 levels
    assert d["last"]["background"] == pytest.approx(expected, abs=1.0)
    assert d["contrast"]["background"] == d["last"]["background"]
    assert not drift.drift_passes(d["last"])["background"] and drift.drift_passes(d["last"])["motion"]
    per_segment = [s.background for s in drift.segment_drift(frames, item.caption, segments=4)]
    assert per_segment[0] == 0 and np.all(np.diff(per_segment) > 8)  # darker segment after segment


def test_a_shape_that_morphs_loses_identity():
    item = _orbit(caption="a blue circle orbiting")
    square = world.render(replace(item.spec, shape="square"), CONFIG)
    frames = np.concatenate([item.frames[:FRAMES // 2], square[FRAMES // 2:]])  # a circle, then a square
    d = drift.start_end_drift(frames, item.caption)
    assert d["first"]["identity"] == 1.0 and d["first"]["shape"] == 1.0
    assert d["last"]["identity"] == 0.0 and d["last"]["shape"] == 0.0 and d["last"]["colour"] == 1.0
    assert d["contrast"]["identity"] == 1.0
    passes = drift.drift_passes(d["last"])
    assert not passes["identity"] and passes["colour"] and passes["motion"]


def test_an_object_that_slows_down():
    item = _orbit(seed=3)
    # first half at full speed, then at half speed on from where it was
    middle = tuple(world.centres(item.spec, CONFIG)[FRAMES // 2])
    slow = world.render(replace(item.spec, speed=item.spec.speed / 2, start=middle, num_frames=FRAMES - FRAMES // 2),
                        CONFIG)
    frames = np.concatenate([item.frames[:FRAMES // 2], slow])
    d = drift.start_end_drift(frames, item.caption)
    assert d["last"]["speed_ratio"] == pytest.approx(0.5, abs=0.06)
    assert d["last"]["motion"] == 1.0  # still orbiting, just slower
    assert not drift.drift_passes(d["last"])["speed"]


def test_a_stalled_object_fails_the_motion():
    item = _orbit()
    frames = np.concatenate([item.frames[:FRAMES // 2], np.repeat(item.frames[FRAMES // 2:FRAMES // 2 + 1],
                                                                  FRAMES - FRAMES // 2, axis=0)])
    d = drift.start_end_drift(frames, item.caption)
    assert d["last"]["motion"] == 0.0 and d["last"]["speed"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least"):
        drift.start_end_drift(frames[:3], item.caption)
