"""`ldm-video data preview`: see what the trainer would train on before spending GPU hours.

For each usable item of --data, OUT/<stem>.png holds the frames the trainer samples, side by side at the
size they train at (after rotation, bucket, resize and crop), and OUT/preview.json lists per item the
file, its caption and where it came from, its size as decoded (after rotation), its bucket, the source
timestamps of the sampled frames, and the skipped items with their reasons. It runs train's own data pipeline
(`ldm_video.train.data`) on train's data flags (or a `--config` / preset), with the sample seeds that `prepare`
and `--cache-latents` encode; without a cache, training draws a new clip and crop of every item each epoch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ldm_video.errors import LdmVideoError

PREVIEW_NAME = "preview.json"
PREVIEW_FORMAT = "ldm-video/data-preview"

def preview_fields() -> tuple[str, ...]:
    """The flags `data preview` takes: train's clip flags (the data part it shares with prepare) and the seed, what
    decides the samples."""
    from ldm_video.train.parts import ClipData
    from ldm_video.train.settings import field_names

    return (*field_names(ClipData), "seed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.strip().split("\n")[0]
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("preview", help="write the clips the trainer would sample as PNGs, with preview.json",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from ldm_video.train.config import TrainConfig
    from ldm_video.train.settings import add_config_arguments

    add_config_arguments(p, TrainConfig, only=preview_fields())
    p.add_argument("--output-dir", dest="preview_dir", required=True, metavar="OUT",
                   help="folder for the PNGs and preview.json (new, empty, or an earlier preview, which is replaced)")


def _png_names(paths: list[Path], root: Path) -> list[str]:
    """`<stem>.png` per file; files whose stems clash are named by their path under the data folder instead."""
    stems = [p.stem for p in paths]
    names = []
    for path, stem in zip(paths, stems):
        if stems.count(stem) > 1:
            rel = path.relative_to(root) if root.is_dir() else Path(path.name)
            stem = "__".join(rel.parts)  # sub/a.mp4 -> sub__a.mp4
        names.append(f"{stem}.png")
    return names


def _check_out(out: Path) -> None:
    """OUT may be missing, empty or an earlier preview; its parent must be writable (checked before any scan)."""
    from ldm_video.files import check_writable

    if out.exists() and not out.is_dir():
        raise LdmVideoError(f"{out}: exists and is a file; --output-dir needs a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / PREVIEW_NAME).is_file():
        raise LdmVideoError(f"{out}: folder holds other files (not an earlier preview); pick another --output-dir")
    check_writable(out, "data preview")


def preview(config, out: str | Path) -> dict:
    """Write the preview of `config`'s data (a TrainConfig) to `out`; returns the preview.json record."""
    import numpy as np
    from PIL import Image

    from ldm_video.files import atomic_folder
    from ldm_video.train.cache import cache_seed
    from ldm_video.train.captions import caption_source, read_metadata
    from ldm_video.train.data import VideoFolderDataset, clip_step, scan_folder
    from ldm_video.train.data import preview as sample_frames

    out = Path(out)
    _check_out(out)
    data = config.data.data_config()
    root = Path(data.root).expanduser()
    skipped: list[tuple[Path, str]] = []
    items = scan_folder(data, skipped)
    dataset = VideoFolderDataset(data, items)
    folder = root if root.is_dir() else root.parent
    metadata = read_metadata(folder, recursive=root.is_dir())
    names = _png_names([item.path for item in items], root)

    def rel(path: Path) -> str:
        return str(path.relative_to(folder))

    record = {
        "format": PREVIEW_FORMAT,
        "data": str(root.resolve()),
        "settings": {"frames": data.num_frames, "frame_stride": data.frame_stride, "fps": data.fps,
                     "resolution": list(data.resolution), "crop": data.crop, "buckets": data.buckets,
                     "images": data.images, "seed": config.run.seed},
        "items": [],
        "skipped": [{"file": rel(path), "reason": reason} for path, reason in skipped],
    }

    def fill(tmp: Path) -> None:
        for i, (item, name) in enumerate(zip(items, names)):  # step: one item's sample, as the trainer makes it
            seed = cache_seed(config.run.seed, 0, i)
            sample = dataset[(i, seed)]
            frames = sample_frames(sample)  # (f, H, W, 3) uint8
            strip = np.concatenate(list(frames), axis=1)  # (H, f * W, 3): the frames side by side
            Image.fromarray(strip).save(tmp / name)
            entry = {"file": rel(item.path), "png": name, "kind": item.kind, "caption": item.caption,
                     "caption_source": caption_source(item.path, metadata, folder),
                     "decoded_size": list(item.size), "bucket": list(dataset.sizes[i]),
                     "frames": int(frames.shape[0]), "sample_seed": seed}
            if item.kind == "video":
                info = item.info
                entry.update(rotation=info.rotation, mirrored=info.mirrored, file_fps=round(info.fps, 3),
                             variable_frame_rate=info.variable_rate, clip_fps=round(1.0 / clip_step(data, info), 3),
                             timestamps=[round(t, 4) for t in sample["times"]])
                if info.variable_rate:
                    entry["frame_rate_range"] = [round(r, 3) for r in info.rate_range]
            else:
                entry["timestamps"] = None  # a still: one image (or zoom / pan over it)
            record["items"].append(entry)
        (tmp / PREVIEW_NAME).write_text(json.dumps(record, indent=1, ensure_ascii=False))

    atomic_folder(out, fill)  # an interrupted preview leaves the old one (or none), never half of one
    return record


def run(args: argparse.Namespace) -> int:
    from ldm_video.train.config import TrainConfig
    from ldm_video.train.settings import resolve_config

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.data_command != "preview":  # argparse allows only the registered sub-commands
        raise LdmVideoError(f"unknown data sub-command {args.data_command!r}")
    config = resolve_config(args, TrainConfig)
    record = preview(config, args.preview_dir)
    print(f"data preview: {len(record['items'])} items written to {args.preview_dir} "
          f"({len(record['skipped'])} skipped; see {PREVIEW_NAME})")
    return 0
