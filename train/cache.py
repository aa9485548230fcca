"""Latent caching: clips -> VAE latents and captions -> text embeddings, stored as safetensors shards, so
training needs neither the VAE nor the text encoder on the device (SPEC §6).

A cache folder holds `index.json` (one entry per sample: shard, key, frames, caption, source file, plus the
base and data settings it was made with), `shard-NNNNN.safetensors` files with `<key>.latents`
(4, f, h, w; already scaled by `vae.config.scaling_factor`) and `<key>.text` (seq, dim), and `empty.safetensors`
with the empty caption's embedding (for caption dropout). The folder is written under a temporary name and
renamed when complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ldm_video.errors import LdmVideoError
from ldm_video.text import encode_prompts
from ldm_video.train.data import DataConfig, VideoFolderDataset, clip_step
from ldm_video.train.encode import encode_video

INDEX_NAME = "index.json"
CACHE_FORMAT = "ldm-video/latent-cache"
SHARD_SIZE = 256  # samples per shard


def cache_seed(seed: int, repeat: int, index: int) -> int:
    """The sample seed (clip start, crop, zoom/pan, VAE sampling) of item `index` in cache pass `repeat`."""
    return (seed * 1_000_003 + repeat) * 1_000_033 + index


def check_cache_target(out_dir: str | os.PathLike) -> Path:
    """`out_dir` can take a new cache (missing or empty, in a writable folder); LdmVideoError naming it otherwise.
    Called before any data is scanned or model loaded."""
    from ldm_video.files import check_writable

    out_dir = Path(out_dir)
    if (out_dir / INDEX_NAME).exists():
        raise LdmVideoError(f"{out_dir}: a latent cache is already there (remove it or pick another folder)")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise LdmVideoError(f"{out_dir}: {'folder exists and is not empty' if out_dir.is_dir() else 'is a file'}")
    check_writable(out_dir, "latent cache")  # the cache is written beside it, then renamed into place
    return out_dir


def prepare_cache(
    base,
    data: DataConfig,
    out_dir: str | os.PathLike,
    repeats: int = 1,
    seed: int = 0,
    dtype: torch.dtype = torch.float16,
    progress: bool = True,
    vae_name: str | None = None,
) -> Path:
    """Encode every usable item of `data` `repeats` times (different clips / crops each pass) into `out_dir`.

    Args:
        base: a BaseModel with vae, text_encoder and tokenizer loaded.
        dtype: storage dtype of latents and embeddings.
        vae_name: the --vae folder base.vae came from (None: the base's own VAE); recorded in the index.
    """
    out_dir = check_cache_target(out_dir)
    dataset = VideoFolderDataset(data)
    from ldm_video.files import atomic_folder

    def fill(tmp: Path) -> None:
        text_cache: dict[str, torch.Tensor] = {}

        def text_of(caption: str) -> torch.Tensor:
            if caption not in text_cache:
                text_cache[caption] = encode_prompts(base.tokenizer, base.text_encoder, [caption])[0].to(
                    "cpu", dtype).contiguous()  # (seq, dim)
            return text_cache[caption]

        save_file({"text": text_of("")}, str(tmp / "empty.safetensors"))
        entries, shard, shard_no = [], {}, 0
        jobs = [(r, i) for r in range(repeats) for i in range(len(dataset))]
        for n, (r, i) in enumerate(tqdm(jobs, desc="encoding latents", disable=not progress, unit="clip")):
            sample_seed = cache_seed(seed, r, i)
            sample = dataset[(i, sample_seed)]
            generator = torch.Generator(device=base.vae.device).manual_seed(sample_seed)
            latents = encode_video(base.vae, sample["pixel_values"][None], generator)[0]  # (4, f, h, w)
            key = f"{n:07d}"
            shard[f"{key}.latents"] = latents.to("cpu", dtype).contiguous()
            shard[f"{key}.text"] = text_of(sample["caption"]).clone()  # safetensors refuses shared storage
            name = f"shard-{shard_no:05d}.safetensors"
            item = dataset.items[i]
            fps = 1.0 / clip_step(data, item.info) if item.kind == "video" else None  # the clip's frame rate
            entries.append({"shard": name, "key": key, "num_frames": sample["num_frames"],
                            "size": list(dataset.sizes[i]), "fps": fps,
                            "kind": dataset.items[i].kind, "caption": sample["caption"], "path": sample["path"]})
            if len(shard) >= 2 * SHARD_SIZE or n == len(jobs) - 1:
                save_file(shard, str(tmp / name))
                shard, shard_no = {}, shard_no + 1
        index = {
            "format": CACHE_FORMAT,
            "base": str(base.name),
            "data": str(Path(data.root).resolve()),
            "vae_scaling_factor": base.vae_scale,
            "text_dim": int(text_of("").shape[-1]),
            "frames": data.num_frames,
            "resolution": list(data.resolution),
            "frame_stride": data.frame_stride,
            "fps": data.fps,
            "crop": data.crop,
            "images": data.images,
            "buckets": data.buckets,
            "vae": vae_name,
            "repeats": repeats,
            "seed": seed,
            "dtype": str(dtype).removeprefix("torch."),
            "samples": entries,
        }
        (tmp / INDEX_NAME).write_text(json.dumps(index, indent=1))

    return atomic_folder(out_dir, fill)  # an interrupted run leaves no half cache


def read_cache_index(cache_dir: str | os.PathLike) -> dict:
    """The cache's index.json; LdmVideoError when the folder is not a complete cache."""
    cache_dir = Path(cache_dir)
    path = cache_dir / INDEX_NAME
    if not path.is_file():
        raise LdmVideoError(f"{cache_dir}: not a latent cache (no {INDEX_NAME}; make one with `ldm-video prepare`)")
    try:
        index = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise LdmVideoError(f"{path}: corrupt index ({err})") from None
    if index.get("format") != CACHE_FORMAT or not index.get("samples"):
        raise LdmVideoError(f"{path}: not an ldm-video latent cache, or an empty one")
    return index


class LatentCacheDataset(Dataset):
    """Cached samples: `dataset[(index, seed)]` -> {"latents" (4, f, h, w), "text" (seq, dim), caption, ...}."""

    def __init__(self, cache_dir: str | os.PathLike) -> None:
        self.root = Path(cache_dir)
        self.index = read_cache_index(self.root)
        self.samples = self.index["samples"]
        with safe_open(str(self.root / "empty.safetensors"), "pt") as f:
            self.empty_text = f.get_tensor("text")  # (seq, dim)

    def __len__(self) -> int:
        return len(self.samples)

    def latent_channels(self) -> int:
        """Channels of the cached latents (read off the first sample's tensor header)."""
        entry = self.samples[0]
        with safe_open(str(self.root / entry["shard"]), "pt") as f:
            return int(f.get_slice(f"{entry['key']}.latents").get_shape()[0])

    def is_image(self) -> list[bool]:
        """Per sample: True when it came from an image (what the batch sampler groups by)."""
        return [entry["kind"] == "image" for entry in self.samples]

    def sample_frames(self, index: int) -> int:
        return int(self.samples[index]["num_frames"])

    def clip_fps(self) -> float | None:
        """The frame rate the cached video clips were sampled at (their median; None for images / older caches)."""
        rates = [entry["fps"] for entry in self.samples if entry.get("fps")]
        return float(sorted(rates)[len(rates) // 2]) if rates else None

    def bucket_keys(self) -> list[tuple[int, int]]:
        """Per sample: its (height, width) in pixels (aspect-ratio buckets keep a batch to one size)."""
        return [tuple(entry.get("size", self.index["resolution"])) for entry in self.samples]

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        index = key[0] if isinstance(key, tuple) else key
        entry = self.samples[index]
        try:
            with safe_open(str(self.root / entry["shard"]), "pt") as f:
                latents = f.get_tensor(f"{entry['key']}.latents")  # (4, f, h, w)
                text = f.get_tensor(f"{entry['key']}.text")  # (seq, dim)
        except (OSError, KeyError) as err:
            raise LdmVideoError(f"{self.root / entry['shard']}: unreadable cache shard ({err})") from None
        return {"latents": latents, "text": text, "caption": entry["caption"],
                "num_frames": int(entry["num_frames"]), "path": entry["path"]}


def collate_cached(samples: list[dict]) -> dict:
    """Stack cached samples: latents (b, 4, f, h, w), text (b, seq, dim)."""
    frames = {s["num_frames"] for s in samples}
    if len(frames) != 1:
        raise ValueError(f"a batch mixes frame counts {sorted(frames)}")
    return {
        "latents": torch.stack([s["latents"] for s in samples]),  # (b, 4, f, h, w)
        "text": torch.stack([s["text"] for s in samples]),  # (b, seq, dim)
        "caption": [s["caption"] for s in samples],
        "num_frames": frames.pop(),
        "path": [s["path"] for s in samples],
    }
