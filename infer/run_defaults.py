"""What `generate` takes from the run it is given when the user leaves a flag out, and random seeds.

- `--base`: the base the `--motion` run was trained on, else `ldm_video.base.DEFAULT_BASE` (the one rule for a
  missing `--base`, see `ldm_video.base`), checked before anything is written.
- `--clip-frames` / `--fps`: the clip length and frame rate the `--motion` run was trained on (its record),
  else 8 and 8.
- `--seed -1` / `--seeds=-1,...`: a random seed per -1 (A1111's convention), said with each video and recorded
  in its sidecar.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ldm_video.errors import LdmVideoError
from ldm_video.infer.prompts import MAX_SEED, RANDOM_SEED, draw_seeds, parse_seeds

FALLBACK_CLIP_FRAMES = 8  # without a --motion that records its clips (or with a MotionAdapter / AnimateDiff file)
FALLBACK_FPS = 8.0


def fill_base(args: argparse.Namespace) -> None:
    """args.base from the --motion run when not given; BaseModelError (one line, at once) when it is unusable."""
    from ldm_video.base import DEFAULT_BASE, check_base

    if args.base is None:
        from ldm_video.checkpoint import recorded_base

        args.base = (recorded_base(args.motion) if args.motion else None) or DEFAULT_BASE
    check_base(args.base, args.base_variant)


def fill_clip(args: argparse.Namespace) -> None:
    """args.clip_frames / args.fps from the --motion run when not given (args.clip_note says so), else 8 and 8."""
    from ldm_video.checkpoint import trained_clip

    if args.clip_frames is not None and args.fps is not None:
        return
    frames, fps = trained_clip(args.motion) if args.motion and Path(args.motion).exists() else (None, None)
    said = [f"--clip-frames {frames}" if args.clip_frames is None and frames else "",
            f"--fps {fps:g}" if args.fps is None and fps else ""]
    if any(said):
        args.clip_note = f"{' '.join(x for x in said if x)} as {args.motion} was trained"
    args.clip_frames = args.clip_frames if args.clip_frames is not None else frames or FALLBACK_CLIP_FRAMES
    args.fps = args.fps if args.fps is not None else fps or FALLBACK_FPS


def seeds(args: argparse.Namespace) -> list[int]:
    """The seeds of this call, each -1 drawn at random (remembered in args.random_seeds)."""
    if not args.seeds and not (args.seed == RANDOM_SEED or 0 <= args.seed <= MAX_SEED):
        raise LdmVideoError(f"--seed {args.seed}: a seed is in 0..{MAX_SEED}, or -1 for a random one")
    asked = parse_seeds(args.seeds) if args.seeds else [args.seed]
    drawn = draw_seeds(asked)
    args.random_seeds = {d for a, d in zip(asked, drawn) if a != d}
    return drawn


def notes(args: argparse.Namespace, seed: int) -> str:
    """What a video's "wrote" line adds: a drawn seed, flags taken from the run."""
    said = [f"random seed {seed}"] if seed in getattr(args, "random_seeds", ()) else []
    said += [args.clip_note] if getattr(args, "clip_note", None) else []
    return "".join("; " + s for s in said)
