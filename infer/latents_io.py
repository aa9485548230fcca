"""Streaming `--save-latents`: one safetensors file holding `latents` (1, 4, num_frames, h, w), float32.

The shape is known before the first clip is sampled, so the safetensors header is written first and each
clip's final latents are written into their place through a file-backed memory map: the file grows on disk,
not in memory. Written under a temporary name and renamed on close. Decode with any SD 2.x VAE:
`vae.decode(rearrange(latents, "b c f h w -> (b f) c h w") / metadata["vae_scaling_factor"])`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ldm_video.errors import LdmVideoError


class LatentWriter:
    """Write latents (1, c, f, h, w) chunk by chunk along f into a safetensors file."""

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], metadata: dict[str, str] | None = None):
        self.path = Path(path)
        if self.path.suffix != ".safetensors":
            raise LdmVideoError(f"{self.path}: latents are written as safetensors; name the file *.safetensors")
        self.shape = tuple(int(s) for s in shape)
        nbytes = int(np.prod(self.shape)) * 4
        header = {"latents": {"dtype": "F32", "shape": list(self.shape), "data_offsets": [0, nbytes]}}
        if metadata:
            header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # safetensors pads the header to 8 bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with open(self.tmp, "wb") as f:
            f.write(len(blob).to_bytes(8, "little"))
            f.write(blob)
            f.truncate(8 + len(blob) + nbytes)
        self._map = np.memmap(self.tmp, dtype="<f4", mode="r+", offset=8 + len(blob), shape=self.shape)
        self.frames_written = 0

    def append(self, latents: torch.Tensor) -> None:
        """Write (1, c, f, h, w) latents after the frames already written."""
        f = latents.shape[2]
        if latents.shape[:2] != self.shape[:2] or latents.shape[3:] != self.shape[3:]:
            raise ValueError(f"latents {tuple(latents.shape)} do not fit {self.shape}")
        if self.frames_written + f > self.shape[2]:
            raise ValueError(f"more than {self.shape[2]} frames of latents")
        end = self.frames_written + f
        self._map[:, :, self.frames_written:end] = latents.detach().float().cpu().numpy()
        self.frames_written = end

    def close(self) -> Path:
        if self.frames_written != self.shape[2]:
            self.abort()
            raise LdmVideoError(f"{self.path}: got {self.frames_written} of {self.shape[2]} frames of latents")
        self._map.flush()
        del self._map
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if hasattr(self, "_map"):
            del self._map
        self.tmp.unlink(missing_ok=True)
