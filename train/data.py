"""Training data: a folder of videos and images with captions -> clips for the video U-Net.

Public API (kept small; the VAE trainer reuses it):

- `DataConfig`: what to sample (frames, stride or fps, resolution, crop, how images are used).
- `scan_folder(config) -> list[MediaItem]`: find media, read captions, probe every file; each bad item
  (corrupt, empty, too short for the clip, a caption that is not text) is skipped with one warning line
  naming the file and the reason, then one summary line; no usable item at all is an `LdmVideoError`.
- `VideoFolderDataset(config, items=None)`: `dataset[(index, seed)]` -> a sample dict
  `{"pixel_values": float (3, f, H, W) in [-1, 1], "caption": str, "num_frames": int, "path": str}`.
  All randomness (clip start, crop, zoom/pan) comes from the `seed` in the key, so a sample is a pure
  function of its key.
- `ClipBatchSampler`: the batches of an epoch as lists of `(index, seed)` keys, a pure function of
  (seed, epoch); every batch is all-video or all-image (images as 1-frame samples cannot share a batch
  with clips), and `image_share` sets the fraction of image batches. Shards batches across processes and
  can start mid-epoch (`start_batch`), which is how training resumes at its exact data position.
  With `groups=bucket_keys(dataset)` every batch also shares one aspect-ratio bucket.
- `make_dataloader(dataset, sampler, num_workers)`.

With `buckets=True` each item trains at the aspect-ratio bucket nearest its own aspect (sizes with about the
area of `resolution`, multiples of 32), instead of being cropped to `resolution`.

Images train either as one-frame samples (`images="frame"`; the U-Net then skips its temporal layers, joint
image-video training as in PYoCo / VDM) or as VidRD pseudo-videos made by random zoom and pan
(`images="pseudo-video"`, Gu et al. 2023, §3.3), or not at all (`images="off"`).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch.utils.data import DataLoader, Dataset, Sampler

from ldm_video.errors import LdmVideoError
from ldm_video.train.captions import CaptionError, read_metadata, resolve_caption
from ldm_video.train.decode import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    VideoInfo,
    probe_video,
    read_clip,
    read_image,
    source_times,
    source_times_at,
    usable_starts,
    window_indices,
)
from ldm_video.train.transforms import (
    bucket_sizes,
    nearest_bucket,
    parse_resolution,
    resize_crop,
    to_float_frames,
    to_model_range,
    zoom_pan_video,
)

logger = logging.getLogger("ldm_video.train.data")

IMAGE_MODES = ("pseudo-video", "frame", "off")


@dataclass(frozen=True)
class DataConfig:
    """How clips are sampled from a media folder."""

    root: str  # folder of videos / images (searched recursively; hidden folders skipped)
    num_frames: int = 16  # frames per clip
    frame_stride: int = 1  # take every n-th frame of the file (ignored when fps is set)
    fps: float | None = None  # sample the clip at this frame rate instead of a fixed stride
    resolution: tuple[int, int] = (256, 256)  # (height, width) after resize + crop; an int or "HxW" also works
    crop: str = "center"  # "center" or "random"
    images: str = "pseudo-video"  # "pseudo-video" (VidRD zoom/pan), "frame" (1-frame samples) or "off"
    image_share: float | None = None  # fraction of batches made of images; None = their share of the folder
    min_zoom: float = 0.6  # pseudo-videos: smallest crop box, as a fraction of the largest
    backend: str = "auto"  # video decoder: "auto" (decord if installed, else PyAV), "pyav", "decord"
    buckets: bool = False  # aspect-ratio buckets: each item at the size of ~resolution's area nearest its aspect

    def __post_init__(self) -> None:
        object.__setattr__(self, "resolution", parse_resolution(self.resolution))  # int or "HxW" accepted
        if self.num_frames < 1:
            raise LdmVideoError(f"--frames must be >= 1, got {self.num_frames}")
        if self.frame_stride < 1:
            raise LdmVideoError(f"--frame-stride must be >= 1, got {self.frame_stride}")
        if self.fps is not None and not self.fps > 0:
            raise LdmVideoError(f"--fps must be > 0, got {self.fps}")
        if self.images not in IMAGE_MODES:
            raise LdmVideoError(f"--images must be one of {', '.join(IMAGE_MODES)}, got {self.images!r}")
        if self.crop not in ("center", "random"):
            raise LdmVideoError(f"--crop must be center or random, got {self.crop!r}")
        if self.image_share is not None and not 0.0 <= self.image_share <= 1.0:
            raise LdmVideoError(f"--image-share must be in [0, 1], got {self.image_share}")
        if not 0.0 < self.min_zoom <= 1.0:
            raise ValueError(f"min_zoom must be in (0, 1], got {self.min_zoom}")


@dataclass(frozen=True)
class MediaItem:
    """One usable file of the folder."""

    path: Path
    kind: str  # "video" or "image"
    caption: str
    info: VideoInfo | None = None  # probe result (videos only)
    size: tuple[int, int] | None = None  # (height, width) of the file's frames as displayed (after rotation)
    starts: tuple[int, ...] | None = None  # VFR videos: the start frames whose clip repeats no frame (None: all)


def clip_step(config: DataConfig, info: VideoInfo) -> float:
    """Seconds between two clip frames: 1 / --fps, or --frame-stride frames of the file's rate."""
    return 1.0 / config.fps if config.fps else config.frame_stride / info.fps


def _step_frames(config: DataConfig, info: VideoInfo) -> float:
    """File frames between two clip frames: the stride, or the file's fps / the wanted fps."""
    return info.fps / config.fps if config.fps else float(config.frame_stride)


def _span(config: DataConfig, info: VideoInfo) -> int:
    """File frames a clip covers (its last target taken to the nearest frame, a tie to the earlier one)."""
    return math.ceil((config.num_frames - 1) * _step_frames(config, info) - 0.5) + 1


def _how(config: DataConfig) -> str:
    return f"at {config.fps:g} fps" if config.fps else f"with stride {config.frame_stride}"


def _video_starts(path: Path, config: DataConfig, info: VideoInfo) -> tuple[int, ...] | None:
    """The clip starts this file allows (None: every start up to the span); ValueError when there is none."""
    starts = usable_starts(info, config.num_frames, clip_step(config, info))
    if info.variable_rate:
        slow, fast = info.rate_range
        if len(starts) == 0:
            raise ValueError(f"variable frame rate ({slow:.3g}-{fast:.3g} fps): no {config.num_frames}-frame "
                             f"window {_how(config)} without repeating a frame (a lower --fps helps)")
        logger.warning("%s: variable frame rate (%.3g-%.3g fps); clips are sampled by timestamp at %.3g fps, "
                       "from the %d of %d start frames whose clip repeats no frame", path, slow, fast,
                       1.0 / clip_step(config, info), len(starts), info.num_frames)
        return tuple(int(s) for s in starts)
    if len(starts) == 0:
        if config.num_frames > 1 and _step_frames(config, info) < 1:
            raise ValueError(f"frame rate too low: {info.fps:.3g} fps, a clip at {config.fps:g} fps would repeat "
                             "frames (lower --fps)")
        raise ValueError(f"too short: {info.num_frames} frames, a {config.num_frames}-frame clip "
                         f"{_how(config)} needs {_span(config, info)}")
    return None


def _check_item(path: Path, config: DataConfig, metadata: dict) -> MediaItem:
    """A MediaItem, or ValueError with the reason this file cannot be used."""
    if path.stat().st_size == 0:
        raise ValueError("empty file")
    caption = resolve_caption(path, metadata)  # CaptionError is a ValueError
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        try:
            frame = read_image(path)
        except Exception as err:  # noqa: BLE001 -- PIL raises many types for bad files; the reason matters
            raise ValueError(f"cannot decode image ({type(err).__name__}: {err})") from None
        if frame.shape[0] < 1 or frame.shape[1] < 1:
            raise ValueError("image has no pixels")
        return MediaItem(path, "image", caption, size=(frame.shape[0], frame.shape[1]))
    info = probe_video(path)
    starts = _video_starts(path, config, info)
    return MediaItem(path, "video", caption, info, size=(info.height, info.width), starts=starts)


def check_data_root(config: DataConfig) -> Path:
    """`config.root` as a path: a folder, or one video / image file; LdmVideoError naming it otherwise (cheap: the
    commands call it before they write anything)."""
    root = Path(config.root).expanduser()
    extensions = VIDEO_EXTENSIONS + (IMAGE_EXTENSIONS if config.images != "off" else ())
    if root.is_file() and root.suffix.lower() not in extensions:
        raise LdmVideoError(f"{config.root}: not a video or image file ({' '.join(extensions)}); --data takes a "
                            "folder of them or one of them")
    if not root.exists():
        raise LdmVideoError(f"{config.root}: data folder not found")
    return root


def scan_folder(config: DataConfig, skipped: list[tuple[Path, str]] | None = None) -> list[MediaItem]:
    """Every usable media file under `config.root` (a folder, or one file), sorted by path; warns once per bad
    item (and appends `(path, reason)` to `skipped` when given).

    Raises LdmVideoError when the folder is missing or nothing in it is usable.
    """
    root = check_data_root(config)
    extensions = VIDEO_EXTENSIONS + (IMAGE_EXTENSIONS if config.images != "off" else ())
    if root.is_file():  # one file: trained on alone, its caption from a sidecar or its folder's metadata file
        paths, metadata = [root], read_metadata(root.parent, recursive=False)
    else:
        paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        metadata = read_metadata(root)
    items: list[MediaItem] = []
    reasons: Counter[str] = Counter()
    for path in paths:  # step: probe one file
        try:
            items.append(_check_item(path, config, metadata))
            continue
        except CaptionError as err:
            reasons["caption not text"] += 1
            reason = str(err)
        except (ValueError, OSError) as err:
            reasons[str(err).split(":")[0].split(" (")[0]] += 1
            reason = str(err)
        logger.warning("skipping %s: %s", path, reason)
        if skipped is not None:
            skipped.append((path, reason))
    counts = Counter(item.kind for item in items)
    uncaptioned = sum(1 for item in items if not item.caption)
    summary = f"data: {counts['video']} videos, {counts['image']} images usable in {root}"
    if reasons:
        summary += f"; skipped {sum(reasons.values())} bad items (" + ", ".join(
            f"{n} {why}" for why, n in sorted(reasons.items())) + ")"
    if uncaptioned:
        summary += f"; {uncaptioned} without a caption train unconditionally"
    (logger.warning if reasons else logger.info)(summary)
    if not items:
        found = f"{len(paths)} media files, none usable" if paths else "no media files"
        raise LdmVideoError(f"{root}: no usable training data ({found}; videos: "
                            f"{' '.join(VIDEO_EXTENSIONS)}; images: {' '.join(IMAGE_EXTENSIONS)})")
    return items


class VideoFolderDataset(Dataset):
    """Clips and images of a folder as training samples; `dataset[(index, seed)]` is deterministic."""

    def __init__(self, config: DataConfig, items: list[MediaItem] | None = None) -> None:
        self.config = config
        self.items = scan_folder(config) if items is None else list(items)
        sizes = bucket_sizes(config.resolution) if config.buckets else [config.resolution]
        # (height, width) each item trains at
        self.sizes = [nearest_bucket(*item.size, sizes) if config.buckets and item.size else config.resolution
                      for item in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def clip_fps(self) -> float | None:
        """The frame rate the video clips train at (their median; None without videos): what generate plays."""
        rates = [1.0 / clip_step(self.config, item.info) for item in self.items if item.kind == "video"]
        return float(np.median(rates)) if rates else None

    def sample_frames(self, index: int) -> int:
        """The number of frames item `index` yields (1 for an image in "frame" mode)."""
        item = self.items[index]
        return 1 if item.kind == "image" and self.config.images == "frame" else self.config.num_frames

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, 0)
        item, config = self.items[index], self.config
        generator = torch.Generator().manual_seed(int(seed))
        times: list[float] = []  # seconds into the source of each clip frame (videos)
        if item.kind == "image":
            image = to_float_frames(read_image(item.path)[None])  # (1, 3, h, w)
            if config.images == "frame":
                frames = resize_crop(image, self.sizes[index], config.crop, generator)  # (1, 3, H, W)
            else:
                frames = zoom_pan_video(image[0], config.num_frames, self.sizes[index], generator,
                                        config.min_zoom)  # (f, 3, H, W)
        else:
            indices = self.clip_indices(index, generator)  # the clip's source frames
            try:
                clip = read_clip(item.path, item.info, indices, config.backend)  # (f, h, w, 3) uint8, upright
            except ValueError as err:
                raise LdmVideoError(f"{item.path}: {err}") from None
            frames = resize_crop(to_float_frames(clip), self.sizes[index], config.crop, generator)  # (f, 3, H, W)
            times = source_times_at(item.info, indices)
        pixel_values = to_model_range(frames)  # (3, f, H, W) in [-1, 1]
        return {"pixel_values": pixel_values, "caption": item.caption, "num_frames": pixel_values.shape[1],
                "path": str(item.path), "times": times}

    def clip_indices(self, index: int, generator: torch.Generator) -> list[int]:
        """Source frames of one clip of video `index`: a start drawn from `generator`, then one frame per step."""
        item, config = self.items[index], self.config
        info = item.info
        assert info is not None
        if item.starts is None:  # constant rate: every start up to the span
            last_start = max(0, info.num_frames - _span(config, info))
            start = int(torch.randint(0, last_start + 1, (1,), generator=generator))
        else:
            start = item.starts[int(torch.randint(0, len(item.starts), (1,), generator=generator))]
        if item.starts is None and not config.fps:  # a whole stride: frame start + k * stride, exactly
            return [start + k * config.frame_stride for k in range(config.num_frames)]
        found = window_indices(source_times(info), np.array([start]), config.num_frames, clip_step(config, info))
        return [min(int(i), info.num_frames - 1) if i >= 0 else info.num_frames - 1 for i in found[0]]


class ClipBatchSampler(Sampler[list[tuple[int, int]]]):
    """Epoch-seeded batches of `(index, sample_seed)` keys, all-video or all-image, sharded by rank."""

    def __init__(
        self,
        is_image: list[bool],
        batch_size: int,
        image_share: float | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        groups: list | None = None,
    ) -> None:
        """Args:
            groups: per item, a key (e.g. its bucket size) that every item of a batch must share.
        """
        if batch_size < 1:
            raise LdmVideoError(f"--batch-size must be >= 1, got {batch_size}")
        self.images = [i for i, flag in enumerate(is_image) if flag]
        self.videos = [i for i, flag in enumerate(is_image) if not flag]
        natural = len(self.images) / max(1, len(is_image))
        share = natural if image_share is None else image_share
        self.image_share = 0.0 if not self.images else (1.0 if not self.videos else share)
        self.batch_size, self.seed = batch_size, seed
        self.groups = list(groups) if groups is not None and len(set(groups)) > 1 else None
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch, self.start_batch = 0, 0
        # batches per epoch across all processes: about one pass over the items, a multiple of the world size
        per_pass = max(1, len(is_image) // batch_size)
        self.global_batches = max(num_replicas, per_pass // num_replicas * num_replicas)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch (its batches are a pure function of seed and epoch) and this rank's first batch."""
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return self.global_batches // self.num_replicas

    def epoch_batches(self, epoch: int) -> list[list[tuple[int, int]]]:
        """All processes' batches of `epoch`, in order."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        pools = {"image": self.images, "video": self.videos}
        orders: dict = {"image": [], "video": []}  # kind (or (kind, group)) -> items still to draw
        batches = []
        for _ in range(self.global_batches):  # step: choose the batch's kind, then its items
            kind = "image" if float(torch.rand((), generator=g)) < self.image_share else "video"
            batch = []
            for n in range(self.batch_size):
                if n > 0 and self.groups is not None:  # the rest of the batch from the first item's group
                    key = (kind, self.groups[batch[0][0]])
                    if not orders.get(key):
                        pool = [i for i in pools[kind] if self.groups[i] == key[1]]
                        orders[key] = [pool[i] for i in torch.randperm(len(pool), generator=g).tolist()]
                    index = orders[key].pop()
                else:
                    if not orders[kind]:  # a fresh shuffle of this kind's items
                        pool = pools[kind]
                        orders[kind] = [pool[i] for i in torch.randperm(len(pool), generator=g).tolist()]
                    index = orders[kind].pop()
                batch.append((index, int(torch.randint(0, 2**62, (), generator=g))))
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        mine = self.epoch_batches(self.epoch)[self.rank::self.num_replicas]
        yield from mine[self.start_batch:]


def bucket_keys(dataset: VideoFolderDataset) -> list[tuple[int, int]]:
    """Per item: the (height, width) it trains at (what `ClipBatchSampler(groups=...)` keeps together)."""
    return list(dataset.sizes)


def collate(samples: list[dict]) -> dict:
    """Stack a batch: pixel_values (b, 3, f, H, W); caption / path lists; num_frames an int."""
    frames = {s["num_frames"] for s in samples}
    if len(frames) != 1:
        raise ValueError(f"a batch mixes frame counts {sorted(frames)}")
    return {
        "pixel_values": torch.stack([s["pixel_values"] for s in samples]),  # (b, 3, f, H, W)
        "caption": [s["caption"] for s in samples],
        "num_frames": frames.pop(),
        "path": [s["path"] for s in samples],
    }


def make_dataloader(dataset: Dataset, sampler: ClipBatchSampler, num_workers: int = 0) -> DataLoader:
    """A DataLoader over the sampler's batches (worker processes only decode; all randomness is in the keys)."""
    # a private generator: making an iterator then never draws from the global torch RNG
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate,
                      generator=torch.Generator().manual_seed(sampler.seed))


def image_flags(dataset: VideoFolderDataset) -> list[bool]:
    """Per item: True for an image (what `ClipBatchSampler` groups by)."""
    return [item.kind == "image" for item in dataset.items]


def preview(sample: dict) -> np.ndarray:
    """A sample's pixel_values as uint8 (f, H, W, 3), to look at what the model is fed."""
    x = ((sample["pixel_values"].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # (3, f, H, W)
    return rearrange(x, "c f h w -> f h w c").numpy()
