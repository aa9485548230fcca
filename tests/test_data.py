"""The training data pipeline: folder scanning, captions, bad items, clip sampling, transforms, batching."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from ldm_video.errors import LdmVideoError
from ldm_video.train.data import (
    ClipBatchSampler,
    DataConfig,
    VideoFolderDataset,
    image_flags,
    make_dataloader,
    scan_folder,
)
from ldm_video.train.decode import probe_video, read_clip_pyav
from ldm_video.train.synthetic import write_test_image, write_test_video, write_video
from ldm_video.train.transforms import parse_resolution, resize_crop, zoom_pan_video

VIDEO_EXTS = ("mp4", "webm", "mov", "mkv", "avi", "gif")


def _grey_ramp_video(path: Path, num_frames: int, fps: int = 8) -> None:
    """Frame i is uniformly grey at level 10 + 15 i, so a decoded frame tells its index."""
    frames = np.stack([np.full((32, 32, 3), 10 + 15 * i, np.uint8) for i in range(num_frames)])
    write_video(path, frames, fps=fps)


def _frame_index(frame_u8: np.ndarray) -> int:
    return round((float(frame_u8.mean()) - 10) / 15)


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """Good videos of every container, images of odd modes/sizes, and one of each kind of bad item."""
    d = tmp_path_factory.mktemp("messy")
    for i, ext in enumerate(VIDEO_EXTS):
        write_test_video(d / f"clip_{ext}.{ext}", num_frames=12, seed=i)
        (d / f"clip_{ext}.txt").write_text(f"a {ext} clip\n")
    write_test_image(d / "alpha.png", mode="RGBA")
    write_test_image(d / "grey.jpg", mode="L", height=37, width=51)  # greyscale, odd size
    write_test_image(d / "palette.webp", mode="P", height=33, width=90)
    (d / "sub").mkdir()
    write_test_video(d / "sub" / "from_jsonl.mp4", num_frames=10)
    (d / "sub" / "metadata.jsonl").write_text(
        '{"file_name": "from_jsonl.mp4", "text": "jsonl caption"}\n'
        '{"file_name": "number_caption.mp4", "text": 42}\n')
    write_test_video(d / "sub" / "number_caption.mp4", num_frames=10)
    (d / "csv").mkdir()
    write_test_image(d / "csv" / "pic.jpg")
    (d / "csv" / "metadata.csv").write_text('file_name,text\npic.jpg,"csv, caption"\n')
    (d / "empty.mp4").write_bytes(b"")
    (d / "corrupt.mkv").write_bytes(b"not a video at all " * 64)
    write_test_video(d / "short.mp4", num_frames=3)
    write_test_video(d / "binary_caption.webm", num_frames=12)
    (d / "binary_caption.txt").write_bytes(b"\xff\xfe\x00\x01\x02")
    (d / "notes.md").write_text("ignored: not media")
    return d


def test_parse_resolution():
    assert parse_resolution(256) == (256, 256)
    assert parse_resolution("64") == (64, 64)
    assert parse_resolution("320x512") == (320, 512)
    assert parse_resolution([32, 48]) == (32, 48)
    for bad in ("abc", "30x32", "0", "32x32x32"):
        with pytest.raises(LdmVideoError):
            parse_resolution(bad)


def test_messy_folder_warns_once_per_bad_item(messy, caplog):
    caplog.set_level(logging.INFO, logger="ldm_video.train.data")
    items = scan_folder(DataConfig(root=str(messy), num_frames=8, resolution=(32, 32)))
    names = {item.path.name: item for item in items}
    assert set(names) == {f"clip_{e}.{e}" for e in VIDEO_EXTS} | {
        "alpha.png", "grey.jpg", "palette.webp", "from_jsonl.mp4", "pic.jpg"}
    assert names["clip_gif.gif"].caption == "a gif clip"
    assert names["from_jsonl.mp4"].caption == "jsonl caption"
    assert names["pic.jpg"].caption == "csv, caption"
    assert names["alpha.png"].caption == ""
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    bad = {"empty.mp4": "empty file", "corrupt.mkv": "cannot decode", "short.mp4": "too short",
           "binary_caption.webm": "not UTF-8", "number_caption.mp4": "int, not text"}
    for name, reason in bad.items():
        lines = [w for w in warnings if f"{name}:" in w]
        assert len(lines) == 1 and reason in lines[0], (name, lines)
    summary = [w for w in warnings if w.startswith("data:")]
    assert len(summary) == 1 and "skipped 5 bad items" in summary[0]
    assert len(warnings) == 6


def test_empty_usable_set_is_an_error(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    write_test_video(tmp_path / "b.mp4", num_frames=2)
    with pytest.raises(LdmVideoError, match="no usable training data"):
        scan_folder(DataConfig(root=str(tmp_path), num_frames=8))
    with pytest.raises(LdmVideoError, match="not found"):
        scan_folder(DataConfig(root=str(tmp_path / "missing")))


def test_samples_have_the_documented_layout(messy):
    ds = VideoFolderDataset(DataConfig(root=str(messy), num_frames=4, resolution=(32, 48), crop="random"))
    for index in range(len(ds)):
        sample = ds[(index, 123)]
        assert sample["pixel_values"].shape == (3, 4, 32, 48)
        assert sample["pixel_values"].dtype == torch.float32
        assert -1.0 <= float(sample["pixel_values"].min()) and float(sample["pixel_values"].max()) <= 1.0
        assert sample["num_frames"] == 4 and isinstance(sample["caption"], str)
        assert torch.equal(sample["pixel_values"], ds[(index, 123)]["pixel_values"])  # pure function of key


def test_rgba_is_composited_on_white(tmp_path):
    write_test_image(tmp_path / "a.png", mode="RGBA", height=16, width=16)
    ds = VideoFolderDataset(DataConfig(root=str(tmp_path), num_frames=1, resolution=16, images="frame"))
    left = ds[(0, 0)]["pixel_values"][:, 0, :, 0]  # (3, H) column with alpha 0
    assert torch.allclose(left, torch.ones_like(left), atol=0.02)


@pytest.mark.parametrize("ext", ["mp4", "webm"])
def test_clip_sampling_by_stride_and_fps(tmp_path, ext):
    path = tmp_path / f"ramp.{ext}"
    _grey_ramp_video(path, num_frames=16, fps=8)
    info = probe_video(path)
    assert info.num_frames == 16 and info.fps == pytest.approx(8.0)
    clip = read_clip_pyav(path, [(2 + 3 * k) / 8 for k in range(4)], info.fps)  # stride 3 from frame 2
    assert [_frame_index(f) for f in clip] == [2, 5, 8, 11]
    # --fps 4 on an 8 fps file = every second frame; --frames 9 at stride 2 needs 17 > 16 frames: too short
    ds = VideoFolderDataset(DataConfig(root=str(tmp_path), num_frames=8, fps=4.0, resolution=32))
    got = ((ds[(0, 5)]["pixel_values"][:, :, 0, 0].mean(0) + 1) * 127.5).numpy()  # (f,)
    indices = [round((g - 10) / 15) for g in got]
    assert np.diff(indices).tolist() == [2] * 7
    with pytest.raises(LdmVideoError):
        scan_folder(DataConfig(root=str(tmp_path), num_frames=9, frame_stride=2))


def test_pseudo_video_moves_and_is_seeded():
    image = torch.rand(3, 60, 90)
    a = zoom_pan_video(image, 8, (32, 32), torch.Generator().manual_seed(0))
    b = zoom_pan_video(image, 8, (32, 32), torch.Generator().manual_seed(0))
    c = zoom_pan_video(image, 8, (32, 32), torch.Generator().manual_seed(1))
    assert a.shape == (8, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert float((a[1:] - a[:-1]).abs().mean()) > 1e-3  # the camera moves
    # no zoom and the same aspect: the whole image, every frame
    still = zoom_pan_video(torch.rand(3, 32, 32), 3, (32, 32), torch.Generator().manual_seed(0), min_zoom=1.0)
    assert torch.allclose(still[0], still[2], atol=1e-5)


def test_resize_crop_odd_sizes():
    frames = torch.rand(2, 3, 37, 51)
    assert resize_crop(frames, (32, 32)).shape == (2, 3, 32, 32)
    assert resize_crop(frames, (24, 64), "random", torch.Generator().manual_seed(0)).shape == (2, 3, 24, 64)


def test_images_as_frames_form_their_own_batches(messy):
    config = DataConfig(root=str(messy), num_frames=4, resolution=32, images="frame", image_share=0.5)
    ds = VideoFolderDataset(config)
    sampler = ClipBatchSampler(image_flags(ds), batch_size=2, image_share=0.5, seed=3)
    sampler.global_batches = 40
    kinds = []
    for batch in sampler.epoch_batches(0):
        frames = {ds.sample_frames(index) for index, _ in batch}
        assert len(frames) == 1
        kinds.append(frames.pop())
    assert 10 <= kinds.count(1) <= 30 and set(kinds) == {1, 4}
    sampler.global_batches = 2
    for batch in make_dataloader(ds, sampler):
        assert batch["pixel_values"].shape[2] == batch["num_frames"] in (1, 4)
    only_video = ClipBatchSampler(image_flags(ds), batch_size=2, image_share=0.0, seed=3)
    assert all(ds.items[i].kind != "image" for b in only_video.epoch_batches(0) for i, _ in b)


def test_sampler_is_deterministic_sharded_and_resumable():
    flags = [False] * 10 + [True] * 3
    one = ClipBatchSampler(flags, batch_size=2, seed=7)
    assert one.epoch_batches(0) == ClipBatchSampler(flags, batch_size=2, seed=7).epoch_batches(0)
    assert one.epoch_batches(0) != one.epoch_batches(1)
    ranks = [ClipBatchSampler(flags, batch_size=2, seed=7, num_replicas=2, rank=r) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 3
    assert list(ranks[0]) + list(ranks[1]) != [] and list(ranks[0]) != list(ranks[1])
    merged = [b for pair in zip(list(ranks[0]), list(ranks[1])) for b in pair]
    assert merged == ranks[0].epoch_batches(0)
    one.set_epoch(2, start_batch=4)
    assert list(one) == one.epoch_batches(2)[4:]


def test_decord_backend_matches_pyav(tmp_path):
    pytest.importorskip("decord")
    from ldm_video.train.decode import read_clip

    path = tmp_path / "ramp.mp4"
    _grey_ramp_video(path, 12)
    info = probe_video(path)
    a = read_clip(path, info, [1, 3, 5, 7], backend="pyav")
    b = read_clip(path, info, [1, 3, 5, 7], backend="decord")
    assert [_frame_index(f) for f in a] == [_frame_index(f) for f in b] == [1, 3, 5, 7]


def test_aspect_ratio_buckets(tmp_path):
    from ldm_video.train.data import bucket_keys
    from ldm_video.train.transforms import bucket_sizes

    assert bucket_sizes((192, 192)) == [(128, 256), (192, 192), (256, 128)]
    assert bucket_sizes((256, 256)) == [(192, 320), (256, 256), (320, 192)]
    write_test_video(tmp_path / "wide.mp4", num_frames=6, height=40, width=80, seed=0)
    write_test_video(tmp_path / "wide2.mp4", num_frames=6, height=36, width=70, seed=1)
    write_test_video(tmp_path / "tall.mp4", num_frames=6, height=80, width=40, seed=2)
    write_test_image(tmp_path / "square.png", height=50, width=50)
    config = DataConfig(root=str(tmp_path), num_frames=4, resolution=192, buckets=True)
    ds = VideoFolderDataset(config)
    sizes = dict(zip((item.path.name for item in ds.items), bucket_keys(ds)))
    assert sizes == {"wide.mp4": (128, 256), "wide2.mp4": (128, 256), "tall.mp4": (256, 128),
                     "square.png": (192, 192)}
    for index, item in enumerate(ds.items):
        assert ds[(index, 1)]["pixel_values"].shape[2:] == sizes[item.path.name]
    sampler = ClipBatchSampler(image_flags(ds), batch_size=2, seed=0, groups=bucket_keys(ds))
    sampler.global_batches = 12
    for batch in sampler.epoch_batches(0):
        assert len({ds.sizes[i] for i, _ in batch}) == 1  # one bucket per batch
    sampler.global_batches = 3
    for batch in make_dataloader(ds, sampler):
        assert batch["pixel_values"].shape[0] == 2
    plain = VideoFolderDataset(DataConfig(root=str(tmp_path), num_frames=4, resolution=192))
    assert set(bucket_keys(plain)) == {(192, 192)}
