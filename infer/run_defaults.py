"""What `generate` takes from the run it is given when the user leaves a flag out, and random seeds.

- `--base`: the base the `--motion` run was trained on, else `ldm_video.base.DEFAULT_BASE` (the one rule for a
  missing `--base`, see `ldm_video.base`), checked before anything is written.
- `--clip-frames` / `--fps`: the clip length and frame rate the `--motion` run was trained on (its record),
  else 8 and 8.
- `--extend`, and with `--extend context` the given frames (`--overlap`), their noise (`--context-noise`) and
  history guidance (`--context-guidance`): as the `--motion` run was trained to continue frames.
- `--seed -1` / `--seeds=-1,...`: a random seed per -1 (A1111's convention), said with each video and recorded
  in its sidecar.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ldm_video.errors import LdmVideoError
from ldm_video.infer.prompts import MAX_SEED, RANDOM_SEED, draw_seeds, parse_seeds

logger = logging.getLogger("ldm_video.generate")

FALLBACK_CLIP_FRAMES = 8  # without a --motion that records its clips (or with a MotionAdapter / AnimateDiff file)
FALLBACK_FPS = 8.0
# --extend context samples the given frames at this share of the noise level they were trained up to: as good
# as 0.25, better than 1 (benchmarks/RESULTS.md, "How much noise on the given frames", 2026-12-07)
CONTEXT_NOISE_SHARE = 0.5


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


def default_extend(args: argparse.Namespace) -> str:
    """"context" for a --motion trained to continue given frames (measured far better across seams on the toy
    world, README), unless a VidRD-only flag asks for VidRD; else "vidrd"."""
    from ldm_video.checkpoint import trained_context_frames

    vidrd_only = any(getattr(args, k) is not None for k in ("pns_alpha", "dsg_beta", "reuse_order", "seam_drop"))
    if args.motion and not vidrd_only and Path(args.motion).exists() and trained_context_frames(args.motion):
        return "context"
    return "vidrd"


def context_overlap(args: argparse.Namespace) -> int:
    """--extend context: M given frames, the --motion's trained --context-frames unless --overlap says otherwise."""
    from ldm_video.checkpoint import trained_context_frames

    trained = trained_context_frames(args.motion) if args.motion else 0
    if not trained:
        raise LdmVideoError(f"--extend context needs temporal layers trained with `ldm-video train --context-frames N`; "
                            f"{args.motion or 'the fresh temporal layers (no --motion)'} "
                            f"{'were not' if args.motion else 'are untrained'} (use --extend vidrd)")
    m = trained if args.overlap is None else args.overlap
    if not 0 < m < args.clip_frames:
        source = "--overlap" if args.overlap is not None else f"{args.motion} was trained with --context-frames {m}"
        raise LdmVideoError(f"--extend context gives each clip {m} frames of the last ({source}); --clip-frames "
                            f"{args.clip_frames} must be larger, and --overlap at least 1")
    if m != trained:
        logger.warning("--overlap %d: %s was trained to continue from %d given frames", m, args.motion, trained)
    return m


def context_noise(args: argparse.Namespace) -> int:
    """--extend context: the timestep the given frames are noised to; by default a share of what the --motion was
    trained with (train --context-noise)."""
    from ldm_video.checkpoint import trained_context_noise

    if args.context_noise is not None:
        if not 0 <= args.context_noise < 1000:
            raise LdmVideoError(f"--context-noise must be a timestep in [0, 1000), got {args.context_noise}")
        return args.context_noise
    return round(trained_context_noise(args.motion) * CONTEXT_NOISE_SHARE)


def context_guidance(args: argparse.Namespace) -> bool:
    """--extend context: history guidance, by default on where guidance is, unless the --motion was trained with
    context frames in every clip (its unconditional branch, without them, would be outside its training)."""
    from ldm_video.checkpoint import trained_context_prob

    if args.context_guidance is not None:
        return args.context_guidance
    return args.guidance > 1 and (trained_context_prob(args.motion) or 0.0) < 1


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
