"""Does a motion module move toy objects the learnt way? Generate toy clips in-process and score them.

The measuring half of the one-motion demo (MotionLoRA-style: AnimateDiff, Guo et al., ICLR 2024; MotionDirector,
Zhao et al., 2023): a base is loaded once, the temporal layers (trained ones, or fresh zero-initialised ones:
the image model run per frame) are injected, and short clips of every colour x shape, or a long video clip by
clip with VidRD (Gu et al., 2023), are sampled with `ldm_video.infer.pipeline.VideoSampler` and scored with the
toy world's ground truth (`ldm_video.toy.metrics`). Scores are grouped: shapes seen in training against
held-out ones, and per colour.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np
import torch

from ldm_video.toy.metrics import VideoScores, score_video
from ldm_video.toy.world import COLOURS, SHAPES, caption_for

# the scores that the groups average (fractions in [0, 1] unless said)
GROUP_METRICS = ("direction", "present", "colour", "shape", "identity", "background", "mean_speed",
                 "speed_consistency")


@dataclass(frozen=True)
class ClipSampling:
    """How every scored video is sampled (the demo's settings by default)."""

    clip_frames: int = 8  # frames denoised together
    steps: int = 20  # DDIM steps per clip
    guidance: float = 5.0  # classifier-free guidance
    noise_prior: str = "progressive"  # PYoCo prior of the initial noise (the training prior)
    noise_alpha: float = 0.5
    size: int = 64  # pixels (the toy world's frame size)
    overlap: int = 4  # long videos: VidRD M
    reuse_order: str = "forward"  # long videos: VidRD prompt-frame order (generate --reuse-order)
    pns_alpha: float = 4.0  # long videos: VidRD PNS alpha (its released default)
    dsg_beta: float = 0.4  # long videos: VidRD DSG beta (its released default)
    seam_drop: int | None = None  # long videos: leading frames of each later clip left out (None: generate's default)
    extend: str = "vidrd"  # long videos: "vidrd", or "context" (temporal layers trained with --context-frames)
    context_noise: int = 0  # long videos, extend "context": timestep of the noise put on the given frames
    context_init: str = "fresh"  # long videos, extend "context": where the new frames start (LongVideoConfig)
    context_anchor: bool = False  # long videos, extend "context": keep the first clip's latent channel means
    context_guidance: bool = False  # long videos, extend "context": guidance's unconditional branch without them
    history_scale: float | None = None  # long videos, with context_guidance: the given frames' own weight
    # long videos, with context_guidance: how its rows go without the given frames (None: generate's default)
    history_free: str | None = None
    # long videos, extend "context" with a block-causal model: the given frames run once per clip, their keys and
    # values cached (False: at every step under the block-causal mask; the same frames, more work)
    context_cache: bool = True
    motion_scale: float = 1.0  # strength of the temporal layers' branches (`VideoUNet.set_motion_scale`)


@dataclass
class ToyGenerator:
    """A toy base with temporal layers, loaded once, that samples scored videos."""

    base: str  # toy base folder
    motion: str | None  # temporal layers (a `train` output folder or MotionAdapter); None = fresh ones
    sampling: ClipSampling = field(default_factory=ClipSampling)

    def __post_init__(self) -> None:
        from ldm_video import load_base
        from ldm_video.infer.model import load_video_model

        self.parts = load_base(self.base, components=("unet", "vae", "text_encoder", "tokenizer", "scheduler"))
        self.model = load_video_model(self.parts, self.motion, None, 1.0, self.sampling.motion_scale)
        self._text: dict[str, torch.Tensor] = {}

    def _embed(self, prompt: str) -> torch.Tensor:
        from ldm_video.infer.pipeline import encode_prompt

        if prompt not in self._text:
            p = self.parts
            self._text[prompt] = encode_prompt(p.tokenizer, p.text_encoder, prompt, "", self.sampling.guidance,
                                               "cpu", torch.float32)  # (2|1, seq, dim)
        return self._text[prompt]

    def seam_drop(self) -> int:
        from ldm_video.infer.vidrd import default_seam_drop

        s = self.sampling
        return default_seam_drop(s.extend, s.reuse_order, s.overlap, s.clip_frames) if s.seam_drop is None \
            else s.seam_drop

    def video(self, prompt: str, num_frames: int, seed: int) -> np.ndarray:
        """uint8 (f, H, W, 3): one clip, or clip by clip with VidRD when num_frames > clip_frames."""
        from ldm_video.infer.pipeline import (
            DEFAULT_HISTORY_FREE,
            LongVideoConfig,
            SamplingConfig,
            VideoSampler,
        )
        from ldm_video.infer.vidrd import VidRDConfig
        from ldm_video.video_file import to_uint8

        s = self.sampling
        sampling = SamplingConfig(scheduler="ddim", steps=s.steps, guidance=s.guidance, noise_prior=s.noise_prior,
                                  noise_alpha=s.noise_alpha, height=s.size, width=s.size, seed=seed)
        long = num_frames > s.clip_frames  # one clip needs no overlap and drops nothing
        vidrd = VidRDConfig(clip_frames=s.clip_frames, overlap=s.overlap if long else 0, pns_alpha=s.pns_alpha,
                            dsg_beta=s.dsg_beta, order=s.reuse_order)
        extend = s.extend if long else "vidrd"
        video = LongVideoConfig(num_frames=num_frames, extend=extend, vidrd=vidrd,
                                seam_drop=self.seam_drop() if long else 0,
                                context_noise=s.context_noise if extend == "context" else 0,
                                context_init=s.context_init if extend == "context" else "fresh",
                                context_anchor=s.context_anchor and extend == "context",
                                context_guidance=s.context_guidance and extend == "context",
                                history_scale=s.history_scale if extend == "context" else None,
                                history_free=s.history_free or DEFAULT_HISTORY_FREE)
        sampler = VideoSampler(model=self.model, vae=self.parts.vae, scheduler_config=dict(self.parts.scheduler.config),
                               sampling=sampling, video=video, progress=False, cache_context=s.context_cache)
        chunks = [to_uint8(chunk.frames).numpy() for chunk in sampler(self._embed(prompt))]  # (f, H, W, 3) each
        return np.concatenate(chunks)  # (num_frames, H, W, 3)

    def score(self, prompt: str, num_frames: int, seed: int) -> VideoScores:
        """The toy scores of one generated video (seams as sampled when it is longer than a clip)."""
        frames = self.video(prompt, num_frames, seed)
        long = num_frames > self.sampling.clip_frames
        return score_video(frames, prompt, clip_frames=self.sampling.clip_frames if long else None,
                           seam_drop=self.seam_drop())


@dataclass(frozen=True)
class ScoredClip:
    """One generated clip with what it was asked for and its scores."""

    colour: str
    shape: str
    seed: int
    frames: np.ndarray  # uint8 (f, H, W, 3)
    scores: VideoScores


def sample_clips(generator: ToyGenerator, motion: str, seeds: int, num_frames: int = 8, seed_offset: int = 0,
                 shapes: tuple[str, ...] = SHAPES, colours: tuple[str, ...] = tuple(COLOURS)) -> list[ScoredClip]:
    """A clip of every colour x shape "moving `motion`", `seeds` sampling seeds each, scored."""
    clips = []
    for colour in colours:
        for shape in shapes:
            for seed in range(seed_offset, seed_offset + seeds):
                caption = caption_for(colour, shape, motion)
                frames = generator.video(caption, num_frames, seed)
                clips.append(ScoredClip(colour, shape, seed, frames, score_video(frames, caption)))
    return clips


def mean_scores(scores: list[VideoScores]) -> dict[str, float]:
    """Mean of each GROUP_METRICS score over videos, with the count."""
    rows = [s.as_dict() for s in scores]
    return {"videos": len(rows), **{m: statistics.fmean(r[m] for r in rows) if rows else float("nan")
                                    for m in GROUP_METRICS}}


def group_scores(clips: list[ScoredClip], held_out: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Mean scores of "held out" and "seen" shapes, of each colour, and of "all" clips."""
    groups: dict[str, list[VideoScores]] = {}
    for clip in clips:
        for name in ("all", "held out" if clip.shape in held_out else "seen", clip.colour):
            groups.setdefault(name, []).append(clip.scores)
    return {name: mean_scores(scores) for name, scores in groups.items()}
