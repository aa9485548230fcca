"""Real clips as phones and screen recorders write them: a display rotation (portrait video stored sideways) and a
variable frame rate. Small files are written here with PyAV; the frames must come out as players show them, and
a clip never repeats a source frame (the policy in `ldm_video.train.decode` and docs/data.md)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ldm_video.cli import main
from ldm_video.train import decode
from ldm_video.train.data import DataConfig, VideoFolderDataset, scan_folder
from ldm_video.train.decode import display_orientation, probe_video, read_clip, read_clip_pyav
from ldm_video.train.synthetic import write_test_image, write_test_video
from ldm_video.video_file import write_video

RED, GREEN, BLUE = (230, 20, 20), (20, 230, 20), (20, 20, 230)


def _portrait_scene(num_frames: int = 6, height: int = 64, width: int = 48) -> np.ndarray:
    """uint8 (f, h, w, 3), taller than wide: red top-left quadrant, green top-right, blue bottom-left, grey rest."""
    img = np.full((height, width, 3), 128, np.uint8)
    img[:height // 2, :width // 2] = RED
    img[:height // 2, width // 2:] = GREEN
    img[height // 2:, :width // 2] = BLUE
    return np.repeat(img[None], num_frames, axis=0)


def _quadrants(frames: np.ndarray) -> list[int]:
    """The dominant channel (0 red, 1 green, 2 blue) of the top-left, top-right and bottom-left quadrants."""
    h, w = frames.shape[1] // 2, frames.shape[2] // 2
    parts = [frames[:, :h, :w], frames[:, :h, w:], frames[:, h:, :w]]
    return [int(np.argmax(p.reshape(-1, 3).mean(0))) for p in parts]


def _write_phone_clip(path: Path, rotation: int = 90, num_frames: int = 6) -> np.ndarray:
    """A portrait clip stored as a phone stores it: frames turned sideways plus a display rotation. Returns the
    upright frames a player shows."""
    import av

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    upright = _portrait_scene(num_frames)
    stored = np.ascontiguousarray(np.rot90(upright, k=-rotation // 90, axes=(1, 2)))  # undo the display turn
    write_video(path, stored, fps=8, crf=0, rotation=rotation)
    return upright


def test_rotated_portrait_clip_decodes_upright(tmp_path):
    path = tmp_path / "phone.mp4"
    upright = _write_phone_clip(path)
    info = probe_video(path)
    assert (info.height, info.width, info.rotation, info.mirrored) == (64, 48, 90, False)  # as displayed
    clip = read_clip(path, info, [0, 2, 4], backend="pyav")
    assert clip.shape == (3, 64, 48, 3)
    assert _quadrants(clip) == _quadrants(upright) == [0, 1, 2]
    assert np.abs(clip.astype(int) - upright[:3]).mean() < 8  # the picture itself, not just its shape


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
@pytest.mark.parametrize("hflip", [False, True])
def test_every_display_orientation_is_undone(tmp_path, degrees, hflip):
    """The eight EXIF-style orientations, written as display matrices by PyAV, read back upright."""
    import av

    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    upright = _portrait_scene(2)
    # a player turns the stored picture, then flips it (FFmpeg / PyAV): undo both in the other order
    stored = np.ascontiguousarray(np.rot90(upright[:, :, ::-1] if hflip else upright, k=-degrees // 90, axes=(1, 2)))
    path = tmp_path / "o.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = stored.shape[2], stored.shape[1], "yuv420p"
        stream.options = {"crf": "0"}
        stream.set_display_rotation(degrees, hflip=hflip)
        for array in stored:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe_video(path)
    assert (info.rotation, info.mirrored) == (degrees, hflip)
    clip = read_clip(path, info, [0, 1], backend="pyav")
    assert clip.shape[1:3] == (64, 48) and _quadrants(clip) == [0, 1, 2]


def test_legacy_rotate_tag_and_no_rotation():
    """FFmpeg before 7 reported the display matrix as a clockwise `rotate` tag; frames without side data stay."""
    frame = SimpleNamespace(side_data=[], rotation=0)
    assert display_orientation(frame, SimpleNamespace(metadata={"rotate": "90"})) == (270, False)
    assert display_orientation(frame, SimpleNamespace(metadata={"rotate": "270"})) == (90, False)
    assert display_orientation(frame, SimpleNamespace(metadata={})) == (0, False)


def test_display_matrix_read_from_either_side_data_form():
    """PyAV up to 18.1.0 iterates a frame's side data as its entries, 18.1.1 on as their types (Mapping keys)."""
    import struct

    class Entry:  # a DISPLAYMATRIX entry: FFmpeg's 3x3 int32 matrix, 16.16 fixed point; a 90 degree turn, flipped
        type = "Type.DISPLAYMATRIX"

        def __bytes__(self):
            return struct.pack("<9i", 0, -65536, 0, -65536, 0, 0, 0, 0, 1 << 30)

    class AsKeys(dict):  # iterating gives the types; indexing gives the entries
        pass

    as_entries = SimpleNamespace(side_data=[Entry()])
    as_keys = SimpleNamespace(side_data=AsKeys({"DISPLAYMATRIX": Entry()}))
    stream = SimpleNamespace(metadata={})
    assert display_orientation(as_entries, stream) == display_orientation(as_keys, stream) == (90, True)


def test_decord_path_applies_the_rotation_too(tmp_path, monkeypatch):
    """decord returns frames as stored (it ignores the display matrix): read_clip turns them as for PyAV."""
    path = tmp_path / "phone.mp4"
    _write_phone_clip(path)
    info = probe_video(path)
    calls = []

    def as_stored(p, indices):  # what decord.VideoReader.get_batch gives: frames as stored, by index
        calls.append(list(indices))
        return read_clip_pyav(p, [i / info.fps for i in indices], info.fps)

    monkeypatch.setattr(decode, "read_clip_decord", as_stored)
    clip = read_clip(path, info, [1, 3], backend="decord")
    assert calls == [[1, 3]] and clip.shape == (2, 64, 48, 3) and _quadrants(clip) == [0, 1, 2]


def test_rotated_clip_buckets_and_caches_as_portrait(tmp_path, tiny_base):
    data = tmp_path / "data"
    _write_phone_clip(data / "phone.mp4", num_frames=8)
    config = DataConfig(root=str(data), num_frames=4, resolution=256, buckets=True, images="off")
    ds = VideoFolderDataset(config)
    assert ds.items[0].size == (64, 48) and ds.sizes == [(320, 192)]  # the portrait bucket, not the landscape one
    sample = ds[(0, 0)]
    assert sample["pixel_values"].shape == (3, 4, 320, 192)
    from ldm_video.train.data import preview

    assert _quadrants(preview(sample)) == [0, 1, 2]  # upright, as the player shows it
    cache = tmp_path / "cache"
    assert main(["prepare", "--base", tiny_base, "--data", str(data), "--output-dir", str(cache), "--frames", "4",
                 "--resolution", "256", "--buckets", "--images", "off", "--dtype", "fp32"]) == 0
    index = json.loads((cache / "index.json").read_text())
    assert index["samples"][0]["size"] == [320, 192]
    from safetensors import safe_open

    with safe_open(str(cache / index["samples"][0]["shard"]), "pt") as f:
        assert tuple(f.get_tensor(f"{index['samples'][0]['key']}.latents").shape) == (4, 4, 40, 24)  # h > w


# -- variable frame rate -------------------------------------------------------------------------------------------

FAST = list(range(50))  # 2 s at 25 fps ...
SLOW = list(range(50, 100, 3))  # ... then 2 s at 8.3 fps (ticks of 1/25 s)


def _vfr_clip(path: Path, ticks: list[int]) -> None:
    """Frame i is uniformly grey at 10 + 3 i (its index can be read back), shown at ticks[i] / 25 s."""
    frames = np.stack([np.full((32, 32, 3), 10 + 3 * i, np.uint8) for i in range(len(ticks))])
    write_video(path, frames, fps=25, crf=0, ticks=ticks)


def _indices(clip: np.ndarray) -> list[int]:
    return [round((float(f.mean()) - 10) / 3) for f in clip]


def test_vfr_clip_is_sampled_by_timestamp_without_repeats(tmp_path, caplog):
    path = tmp_path / "vfr.mp4"
    _vfr_clip(path, FAST + SLOW)
    info = probe_video(path)
    assert info.variable_rate and info.fps == pytest.approx(25, rel=0.01)
    assert info.rate_range == pytest.approx((25 / 3, 25), rel=0.01)
    caplog.set_level(logging.WARNING)
    ds = VideoFolderDataset(DataConfig(root=str(tmp_path), num_frames=8, resolution=32))
    named = [r.getMessage() for r in caplog.records if "variable frame rate" in r.getMessage()]
    assert len(named) == 1 and str(path) in named[0]  # the file is named once
    assert ds.items[0].starts == tuple(range(44))  # 8 frames at 25 fps fit only in the 25 fps part (0..50)
    for seed in range(6):
        sample = ds[(0, seed)]
        assert np.diff(sample["times"]) == pytest.approx([0.04] * 7, abs=1e-6)  # uniform in time
    # the decoded frames are the ones timed, each once
    clip = read_clip(path, info, list(range(40, 48)), backend="pyav")
    assert _indices(clip) == list(range(40, 48))
    # at --fps 8 (a step longer than the slow part's gaps) windows reach into the slow part, still without repeats
    ds8 = VideoFolderDataset(DataConfig(root=str(tmp_path), num_frames=8, fps=8.0, resolution=32))
    assert max(ds8.items[0].starts) > 50
    for start in ds8.items[0].starts[::7]:
        indices = decode.window_indices(decode.source_times(info), np.array([start]), 8, 1 / 8)[0]
        got = _indices(read_clip(path, info, list(indices), backend="pyav"))
        assert got == list(indices) and len(set(got)) == 8


def test_vfr_without_a_clean_window_and_fps_above_the_file_are_skipped(tmp_path, caplog):
    _vfr_clip(tmp_path / "mostly_slow.mp4", list(range(12)) + list(range(12, 80, 3)))
    write_test_video(tmp_path / "eight_fps.mp4", num_frames=40, fps=8)
    skipped: list = []
    caplog.set_level(logging.WARNING)
    with pytest.raises(Exception, match="no usable training data"):
        scan_folder(DataConfig(root=str(tmp_path), num_frames=16, fps=20.0, resolution=32), skipped)
    reasons = {path.name: reason for path, reason in skipped}
    assert "variable frame rate" in reasons["mostly_slow.mp4"] and "without repeating a frame" in reasons["mostly_slow.mp4"]
    assert reasons["eight_fps.mp4"].startswith("frame rate too low: 8 fps")


def test_unnoticed_rate_change_is_named_when_frames_repeat(tmp_path, caplog):
    """A clip read at times the file cannot fill (the probe's policy bypassed) says so, naming the file."""
    path = tmp_path / "vfr.mp4"
    _vfr_clip(path, FAST + SLOW)
    caplog.set_level(logging.WARNING)
    clip = read_clip_pyav(path, [2.0 + k / 25 for k in range(6)], 25.0)  # 25 fps targets in the 8.3 fps part
    assert len(set(_indices(clip))) < 6
    assert any(str(path) in r.getMessage() and "repeat" in r.getMessage() for r in caplog.records)


# -- ldm-video data preview ----------------------------------------------------------------------------------------

@pytest.fixture()
def mixed(tmp_path) -> Path:
    d = tmp_path / "mixed"
    _write_phone_clip(d / "phone.mp4", num_frames=8)
    _vfr_clip(d / "screen.mp4", FAST + SLOW)
    write_test_video(d / "wide.mp4", num_frames=10, height=36, width=64)
    (d / "wide.txt").write_text("a wide clip\n")
    write_test_image(d / "still.jpg", height=40, width=56)
    write_test_video(d / "sub" / "wide.mp4", num_frames=10, height=48, width=64, seed=3)
    (d / "sub" / "metadata.jsonl").write_text('{"file_name": "wide.mp4", "text": "from metadata"}\n')
    (d / "broken.mkv").write_bytes(b"not a video " * 40)
    write_test_video(d / "short.mp4", num_frames=2)
    return d


def test_data_preview_writes_what_the_trainer_samples(mixed, tmp_path, capsys):
    out = tmp_path / "preview"
    assert main(["data", "preview", "--data", str(mixed), "--output-dir", str(out), "--frames", "4",
                 "--resolution", "256", "--buckets"]) == 0
    assert "5 items written" in capsys.readouterr().out
    record = json.loads((out / "preview.json").read_text())
    items = {item["file"]: item for item in record["items"]}
    assert set(items) == {"phone.mp4", "screen.mp4", "wide.mp4", "still.jpg", "sub/wide.mp4"}
    assert {s["file"]: s["reason"].split(" (")[0].split(":")[0] for s in record["skipped"]} == {"broken.mkv": "cannot decode",
                                                                                 "short.mp4": "too short"}
    phone = items["phone.mp4"]
    assert phone["decoded_size"] == [64, 48] and phone["rotation"] == 90 and phone["bucket"] == [320, 192]
    assert items["wide.mp4"]["caption"] == "a wide clip" and items["wide.mp4"]["caption_source"] == "sidecar wide.txt"
    assert items["sub/wide.mp4"]["caption"] == "from metadata"
    assert items["sub/wide.mp4"]["caption_source"] == "metadata sub/metadata.jsonl"
    assert items["still.jpg"]["caption_source"] == "none" and items["still.jpg"]["timestamps"] is None
    screen = items["screen.mp4"]
    assert screen["variable_frame_rate"] and np.diff(screen["timestamps"]) == pytest.approx([0.04] * 3, abs=1e-3)
    assert len(set(screen["timestamps"])) == 4
    # each PNG: the sampled frames side by side at the trained size (the bucket)
    from PIL import Image

    for item in record["items"]:
        with Image.open(out / item["png"]) as png:
            height, width = item["bucket"]
            assert png.size == (width * item["frames"], height), item["file"]
    assert items["wide.mp4"]["png"] != items["sub/wide.mp4"]["png"]  # clashing stems get their folder
    with Image.open(out / phone["png"]) as png:
        strip = np.asarray(png.convert("RGB"))
    assert _quadrants(strip[None, :, :192]) == [0, 1, 2]  # the phone clip, upright
    # the sample is the one `prepare` / --cache-latents encodes for that item
    ds = VideoFolderDataset(DataConfig(root=str(mixed), num_frames=4, resolution=256, buckets=True))
    index = [str(i.path.relative_to(mixed)) for i in ds.items].index("wide.mp4")
    assert items["wide.mp4"]["timestamps"] == pytest.approx(ds[(index, items["wide.mp4"]["sample_seed"])]["times"])


def test_data_preview_refuses_bad_outputs_in_one_line(mixed, tmp_path, capsys):
    out = tmp_path / "preview"
    assert main(["data", "preview", "--data", str(mixed), "--output-dir", str(out), "--frames", "2",
                 "--resolution", "32", "--images", "off"]) == 0
    first = json.loads((out / "preview.json").read_text())
    assert all(item["kind"] == "video" for item in first["items"])
    capsys.readouterr()
    # a second preview replaces the first
    assert main(["data", "preview", "--data", str(mixed), "--output-dir", str(out), "--frames", "2",
                 "--resolution", "32"]) == 0
    assert any(item["kind"] == "image" for item in json.loads((out / "preview.json").read_text())["items"])
    capsys.readouterr()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for target, words in ((other, "not an earlier preview"), (blocker / "preview", str(blocker))):
        assert main(["data", "preview", "--data", str(mixed), "--output-dir", str(target)]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and words in err[0], err  # said before any scan: no "skipping" lines
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    assert main(["data", "preview", "--output-dir", str(tmp_path / "p2")]) == 2
    assert "give --data" in capsys.readouterr().err and not (tmp_path / "p2").exists()
