"""VidRD's clip-to-clip schedule (Gu et al., "Reuse and Diffuse", arXiv 2309.03549, §4.3), as pure functions.

Clips of N frames (`clip_frames`) are generated one after the other; M (`overlap`) "prompt" frames tie
clip c+1 to clip c. Conventions (SPEC §4, from the released `model/pipeline.py`), with k = 0..T-1 the step
index counted from the noisiest step:

- FNR, j < M:  z[c+1, j, 0] = z[c, N-1-j, 0]  (new frame j starts from old frame N-1-j's initial noise)
- PNS, j >= M: z[c+1, j, 0] = a/sqrt(1+a^2) z[c, N-1-j, 0] + e_j,  e_j ~ N(0, 1/(1+a^2) I)  (variance 1)
- DSG, j < M:  z[c+1, j, k] = z[c, N-1-j, k]  while  k < (M - j) (T / M) beta

`order="forward"` is this project's variant (not in the paper): new frame j reuses old frame N-M+j (j < M) and
old frame j-M (j >= M), so the prompt frames replay the old clip's last M frames in time order instead of
mirrored, and DSG holds the old *last* frame longest (hold rank M-1-j). Mirrored prompt frames replay a
directed motion backwards for M frames at every seam, and the new clip is denoised on from them. Forward order
keeps the direction; its prompt frames duplicate old frames, so they are left out of the output (seam_drop = M).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.utils.torch_utils import randn_tensor

from ldm_video.noise import correlation_weights

REUSE_ORDERS = ("reversed", "forward")
# generate's VidRD prompt-frame order: forward beat VidRD's mirrored order over the video on both trained toy models
# (0.63 vs 0.53 and 0.69 vs 0.63 of steps the learnt way, smaller seam jumps; benchmarks/RESULTS.md, "VidRD's reuse on a model that moves")
DEFAULT_REUSE_ORDER = "forward"
# Seam frames left out with the mirrored order, by measurement (benchmarks/RESULTS.md, "`ldm-video generate`
# against diffusers' AnimateDiffPipeline"): keeping all (VidRD's torch.cat) repeats the old last frame at every seam (seam jump ratio
# 0.00), dropping the M prompt frames jumps (1.36); dropping the one near-duplicate gives 1.06.
MIRRORED_SEAM_DROP = 1


def clip_starts(num_frames: int, clip_frames: int, stride: int | None = None) -> list[int]:
    """The one clip layout of a long video: the output frame where each clip's frames begin. The first clip
    gives `clip_frames` frames, each later one `stride` (default N; N - seam_drop for `generate`'s clips), until
    `num_frames` are made (a video of one clip needs no stride)."""
    stride = clip_frames if stride is None else stride
    if clip_frames < 1 or (num_frames > clip_frames and stride < 1):
        raise ValueError(f"clip_frames and stride must be >= 1, got {clip_frames} and {stride}")
    starts = [0]
    t = clip_frames
    while t < num_frames:
        starts.append(t)
        t += stride
    return starts


def default_seam_drop(extend: str, order: str, overlap: int, clip_frames: int) -> int:
    """Leading frames of every later clip left out of the video unless the user says otherwise: a context clip's
    M given frames are the previous clip's (always left out), forward order's M prompt frames duplicate old
    frames, the mirrored order's first frame nearly does; independent clips share nothing."""
    if extend == "context":
        return overlap
    if extend == "independent":
        return 0
    return min(overlap if order == "forward" else MIRRORED_SEAM_DROP, clip_frames - 1)


@dataclass(frozen=True)
class VidRDConfig:
    """How consecutive clips are tied together."""

    clip_frames: int = 8  # N: frames the U-Net denoises at once
    overlap: int = 4  # M: prompt frames of clip c+1 that replay the last M frames of clip c (FNR + DSG)
    pns_alpha: float = 4.0  # a: weight of the old noise in PNS; 0 = fresh noise for frames j >= M
    dsg_beta: float = 0.4  # beta: fraction of the steps frame 0 is held to the old trajectory; 0 = no DSG
    order: str = "reversed"  # "reversed" (VidRD's released code) or "forward" (prompt frames keep time order)

    def __post_init__(self) -> None:
        if self.clip_frames < 1:
            raise ValueError(f"clip_frames must be >= 1, got {self.clip_frames}")
        if not 0 <= self.overlap < self.clip_frames:
            raise ValueError(f"overlap must be in [0, clip_frames), got {self.overlap} with clip_frames "
                             f"{self.clip_frames}")
        if not self.pns_alpha >= 0:
            raise ValueError(f"pns_alpha must be >= 0, got {self.pns_alpha}")
        if not 0 <= self.dsg_beta <= 1:
            raise ValueError(f"dsg_beta must be in [0, 1], got {self.dsg_beta}")
        if self.order not in REUSE_ORDERS:
            raise ValueError(f"order must be one of {', '.join(REUSE_ORDERS)}, got {self.order!r}")


def source_frame(j: int, clip_frames: int, overlap: int = 0, order: str = "reversed") -> int:
    """The old-clip frame that new frame j reuses: N-1-j (reversed, VidRD), or (j + N - M) mod N (forward)."""
    if order == "forward":
        return (j + clip_frames - overlap) % clip_frames
    return clip_frames - 1 - j


def next_clip_noise(
    prev_noise: torch.Tensor,
    overlap: int,
    pns_alpha: float,
    generator: torch.Generator | None = None,
    order: str = "reversed",
) -> torch.Tensor:
    """Initial noise of clip c+1 from clip c's initial noise, by FNR (j < M) and PNS (j >= M).

    Args:
        prev_noise: (b, c, N, h, w) unit-variance initial noise of clip c (before any scheduler scaling).
        overlap: M.
        pns_alpha: a; the PNS frames keep variance 1 for any a.
        order: "reversed" (VidRD) or "forward"; see `source_frame`.
    """
    n = prev_noise.shape[2]
    sources = [source_frame(j, n, overlap, order) for j in range(n)]
    reused = prev_noise[:, :, sources]  # (b, c, N, h, w); frame j holds old frame source_frame(j)
    w_old, w_new = correlation_weights(pns_alpha)
    fresh = randn_tensor(tuple(reused[:, :, overlap:].shape), generator=generator,
                         device=prev_noise.device, dtype=prev_noise.dtype)  # (b, c, N-M, h, w), N(0, I)
    pns = w_old * reused[:, :, overlap:] + w_new * fresh  # VidRD PNS: e_j ~ N(0, 1/(1+a^2) I)
    fnr = reused[:, :, :overlap]  # VidRD FNR: z[c+1, j, 0] = z[c, source(j), 0]
    return torch.cat([fnr, pns], dim=2)  # (b, c, N, h, w)


def dsg_hold_steps(num_steps: int, overlap: int, beta: float, order: str = "reversed") -> list[int]:
    """Steps each prompt frame j < M is held to the old trajectory: #{k in 0..T-1 : k < (M-r)(T/M) beta}, with
    r = j (reversed) or M-1-j (forward): the copy of the old last frame is held longest either way.

    At M=4, T=50, beta=0.4 this is [20, 15, 10, 5] (reversed) and [5, 10, 15, 20] (forward).
    """
    holds = []
    for r in range(overlap):
        bound = (overlap - r) * (num_steps / overlap) * beta  # VidRD DSG threshold on k
        bound = round(bound, 9)  # 4 * 12.5 * 0.4 is 20.000000000000004 in floats; it means 20
        holds.append(min(num_steps, max(0, math.ceil(bound))))
    return holds[::-1] if order == "forward" else holds


def is_held(j: int, k: int, holds: list[int]) -> bool:
    """Whether new frame j takes the old clip's latent at step k (DSG)."""
    return j < len(holds) and k < holds[j]


class DSGTrajectory:
    """The per-step latents of one clip's last M frames, kept for as many steps as the next clip holds them.

    Only those frames and steps are stored (sum(holds) frame latents), so memory does not grow with the video.
    """

    def __init__(self, clip_frames: int, holds: list[int], order: str = "reversed"):
        self.clip_frames = clip_frames
        self.holds = holds
        self.order = order
        self._latents: dict[tuple[int, int], torch.Tensor] = {}  # (j, k) -> (b, c, h, w)

    def record(self, k: int, latents: torch.Tensor) -> None:
        """Store old frames source(j) of `latents` (b, c, N, h, w) at step k, for the j held then."""
        for j in range(len(self.holds)):
            if is_held(j, k, self.holds):
                old = source_frame(j, self.clip_frames, len(self.holds), self.order)
                self._latents[(j, k)] = latents[:, :, old].clone()  # (b, c, h, w)

    def apply(self, k: int, latents: torch.Tensor) -> torch.Tensor:
        """VidRD DSG: z[c+1, j, k] = z[c, source(j), k] for the held frames; frees what is no longer needed."""
        for j in range(len(self.holds)):
            if is_held(j, k, self.holds):
                latents[:, :, j] = self._latents.pop((j, k))  # (b, c, h, w)
        return latents

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._latents.values())
