"""Captions for a media folder: same-stem `.txt` sidecars, or `metadata.jsonl` / `metadata.csv` files with
`file_name` and `text` columns (the Hugging Face `imagefolder` convention; a metadata file describes the
files below its own folder). A sidecar wins over a metadata row.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

logger = logging.getLogger("ldm_video.train.data")

METADATA_NAMES = ("metadata.jsonl", "metadata.csv")
TEXT_COLUMNS = ("text", "caption")  # the first one present is the caption


class CaptionError(ValueError):
    """A caption exists but is not text (binary sidecar, a number / list / null in metadata)."""


def _row_caption(row: dict) -> object:
    for column in TEXT_COLUMNS:
        if column in row:
            return row[column]
    return None


def read_metadata(root: Path, recursive: bool = True) -> dict[Path, object]:
    """Absolute media path -> the raw caption value of every metadata.jsonl / metadata.csv under `root` (only
    those in `root` itself unless `recursive`).

    Unreadable rows are skipped with one warning line each.
    """
    captions: dict[Path, object] = {}
    for name in METADATA_NAMES:
        for meta in sorted(root.rglob(name) if recursive else [p for p in [root / name] if p.is_file()]):
            if any(part.startswith(".") for part in meta.relative_to(root).parts):
                continue
            try:
                text = meta.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                logger.warning("skipping %s: unreadable metadata (%s)", meta, err)
                continue
            if name.endswith(".jsonl"):
                rows = []
                for number, line in enumerate(text.splitlines(), start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as err:
                        logger.warning("skipping %s line %d: not JSON (%s)", meta, number, err.msg)
                        continue
                    if not isinstance(row, dict) or "file_name" not in row:
                        logger.warning("skipping %s line %d: no file_name", meta, number)
                        continue
                    rows.append(row)
            else:
                rows = list(csv.DictReader(text.splitlines()))
                if rows and "file_name" not in rows[0]:
                    logger.warning("skipping %s: no file_name column", meta)
                    rows = []
            for row in rows:
                if any(column in row for column in TEXT_COLUMNS):  # a row without a caption column adds none
                    captions[(meta.parent / str(row["file_name"])).resolve()] = _row_caption(row)
    return captions


def read_sidecar(path: Path) -> str | None:
    """The caption in `path.with_suffix('.txt')`, or None if there is none; CaptionError if it is not text."""
    sidecar = path.with_suffix(".txt")
    if not sidecar.is_file():
        return None
    data = sidecar.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CaptionError(f"caption {sidecar.name} is not UTF-8 text") from None
    if "\x00" in text:
        raise CaptionError(f"caption {sidecar.name} is binary, not text")
    return text.strip()


def resolve_caption(path: Path, metadata: dict[Path, object]) -> str:
    """The caption of a media file ("" when it has none); CaptionError when the one it has is not text."""
    sidecar = read_sidecar(path)
    if sidecar is not None:
        return sidecar
    key = path.resolve()
    if key not in metadata:
        return ""
    value = metadata[key]
    if not isinstance(value, str):
        name = type(value).__name__
        kind = "null" if value is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
        raise CaptionError(f"caption in metadata is {kind}, not text")
    return value.strip()


def caption_source(path: Path, metadata: dict[Path, object], root: Path) -> str:
    """Where `resolve_caption` took the caption of `path` from: "sidecar NAME.txt", "metadata FILE" or "none"."""
    if path.with_suffix(".txt").is_file():
        return f"sidecar {path.with_suffix('.txt').name}"
    if path.resolve() not in metadata:
        return "none"
    for folder in [path.parent, *path.parent.parents]:  # the nearest metadata file that can describe it
        found = [folder / name for name in METADATA_NAMES if (folder / name).is_file()]
        if found:
            return f"metadata {found[0].relative_to(root) if found[0].is_relative_to(root) else found[0]}"
        if folder == root:
            break
    return "metadata"
