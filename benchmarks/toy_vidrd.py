"""VidRD's clip-to-clip reuse (Gu et al., arXiv 2309.03549, §4.3) on a toy model that moves: which settings keep
the learnt direction across seams?

Takes a motion module trained on one motion (`ldm-video demo`'s OUT/motion) and generates the same long videos
with each reuse setting: prompt-frame order (VidRD's mirrored `reversed` against `forward`), seam drop, PNS
alpha and DSG beta; and, for a module trained with `--context-frames` (the demo's), `generate --extend
context`, where each later clip is given the previous clip's last frames. Scored with the toy world's ground
truth: direction over the whole video and on the steps that cross a seam, and the seam jump ratio (SPEC §7).

    python benchmarks/toy_vidrd.py --motion demo/motion --frames 24
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from ldm_video.toy import TOY_BASE
from ldm_video.toy.motion_eval import ClipSampling, ToyGenerator
from ldm_video.toy.world import caption_for

# (order, seam drop (None: generate's default), PNS alpha, DSG beta)
SETTINGS = (("reversed", None, 4.0, 0.4), ("reversed", 4, 4.0, 0.4), ("forward", None, 4.0, 0.4),
            ("forward", None, 4.0, 1.0), ("forward", None, 1.0, 0.4), ("forward", None, 0.0, 0.4),
            ("forward", None, 0.0, 1.0))
PROMPTS = (("red", "circle"), ("blue", "triangle"), ("green", "square"), ("yellow", "triangle"))


def mean(values: list) -> float:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else float("nan")


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--motion", required=True, help="temporal layers trained on one motion (demo OUT/motion)")
    parser.add_argument("--base", default=str(TOY_BASE), help="toy base folder (default: the shipped one)")
    parser.add_argument("--word", default="right", help="the motion it learnt")
    parser.add_argument("--frames", type=int, default=24, help="frames per long video")
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds per prompt")
    parser.add_argument("--prior", default="progressive", help="noise prior of the first clip (the training prior)")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = []
    from ldm_video.checkpoint import trained_context_frames

    context = trained_context_frames(args.motion)
    settings = ((("context", context, None, None),) if context else ()) + SETTINGS
    for order, drop, pns, beta in settings:
        extend = "context" if order == "context" else "vidrd"
        sampling = ClipSampling(noise_prior=args.prior, noise_alpha=args.alpha, extend=extend,
                                overlap=context if extend == "context" else 4,
                                reuse_order="forward" if extend == "context" else order, seam_drop=drop,
                                pns_alpha=pns or 0.0, dsg_beta=beta or 0.0,
                                context_anchor=extend == "context", context_guidance=extend == "context")
        generator = ToyGenerator(args.base, args.motion, sampling)
        scores = [generator.score(caption_for(c, s, args.word), args.frames, seed)
                  for c, s in PROMPTS for seed in range(args.seeds)]
        seams = [s.seam_direction for s in scores]
        rows.append((order, generator.seam_drop(), pns, beta, mean([s.direction for s in scores]), mean(seams),
                     mean([s.seam_jump for s in scores]), mean([s.mean_speed for s in scores]),
                     min(s.direction for s in scores)))
        print(f"# {order} drop {generator.seam_drop()} pns {pns} beta {beta} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\n## VidRD reuse on a model that moves (benchmarks/toy_vidrd.py --motion {args.motion} "
          f"--frames {args.frames})\n")
    print(f"Machine: {platform.machine()} CPU, torch {torch.__version__}, {args.threads} thread(s); "
          f"{len(PROMPTS)} prompts 'moving {args.word}' x {args.seeds} seeds, {args.frames} frames, clips of 8, "
          f"overlap 4, DDIM 20, guidance 5; {time.perf_counter() - start:.0f} s.\n")
    print(f"| reuse order (context: --extend context) | seam drop | PNS alpha | DSG beta | moves {args.word} "
          "(whole video) | ... across seams | "
          "seam jump ratio | mean step px | worst video |")
    print("|---|---|---|---|---|---|---|---|---|")
    for order, drop, pns, beta, d, sd, sj, sp, worst in rows:
        cells = "| - | - |" if pns is None else f"| {pns:g} | {beta:g} |"
        print(f"| {order} | {drop} {cells} {d:.2f} | {sd:.2f} | {sj:.2f} | {sp:.2f} | {worst:.2f} |")


if __name__ == "__main__":
    main_cli()
