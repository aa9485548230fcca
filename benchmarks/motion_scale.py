"""Motion scale (`generate --motion-scale`): a toy motion module sampled with its temporal branches scaled, short
clips of every colour x shape and long context videos, each scale side by side on the same seeds.

Short clips are scored with the toy world's ground truth (`ldm_video.toy.motion_eval`), grouped by seen and
held-out shape; long videos are made by `ldm-video generate` itself (its defaults for the model, `--motion-scale`
added) and scored over the video and as the start-end contrast of the first and last 15 % (`ldm_video.toy.drift`).
The jobs run on `--workers` one-thread processes (`ldm_video.toy.demo_jobs`).

    python benchmarks/motion_scale.py --motion demo/motion --scales 1 1.25 1.5 1.75 2 --long-scales 1 1.5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    from ldm_video.toy import TOY_BASE
    from ldm_video.toy.demo_jobs import ClipJob, LongJob, default_workers, run_jobs
    from ldm_video.toy.motion_eval import ClipSampling, group_scores
    from ldm_video.toy.world import caption_for

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--motion", required=True, help="temporal layers (a `train` / demo motion folder)")
    parser.add_argument("--base", default=str(TOY_BASE), help="toy base (default: the shipped one)")
    parser.add_argument("--world-motion", default="pacing", help="the motion the module learnt (default pacing)")
    parser.add_argument("--held-out", default="circle", help="the shape left out of its training (default circle)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 1.5], help="scales of the short clips")
    parser.add_argument("--long-scales", type=float, nargs="*", default=[1.0, 1.5], help="scales of the long videos")
    parser.add_argument("--seeds", type=int, default=6, help="sampling seeds of the short clips (x 12 clips each)")
    parser.add_argument("--long-seeds", type=int, default=2, help="seeds of each long video's prompt")
    parser.add_argument("--long-frames", type=int, default=256)
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()

    jobs, keys = [], []
    folder = Path(tempfile.mkdtemp(prefix="motion_scale_"))
    prompts = (caption_for("red", "square", args.world_motion), caption_for("blue", args.held_out, args.world_motion))
    for scale in args.long_scales:
        for prompt in prompts:
            for seed in range(args.long_seeds):
                flags = ("--frames", str(args.long_frames), "--steps", "20", "--guidance", "5", "--height", "64",
                         "--width", "64", "--seed", str(seed), "--motion-scale", str(scale))
                out = folder / f"{scale}_{prompt.replace(' ', '_')}_{seed}.mp4"
                jobs.append(LongJob(args.base, prompt, out, args.motion, "context", flags, "forward", 8))
                keys.append(("long", scale, prompt))
    for scale in args.scales:
        sampling = ClipSampling(noise_prior="iid", noise_alpha=0.0, motion_scale=scale)
        for seed in range(args.seeds):
            jobs.append(ClipJob(args.base, args.motion, args.world_motion, 100 + seed, sampling))
            keys.append(("clips", scale, None))
    start = time.perf_counter()
    results = run_jobs(jobs, args.workers, progress=True, desc="videos")
    print(f"{len(jobs)} jobs in {time.perf_counter() - start:.0f} s on {args.workers} process(es); {platform.machine()}, "
          f"torch {torch.__version__}; {args.motion}\n")

    print(f"Short clips (8 frames, DDIM 20, guidance 5, sampling seeds 100-{99 + args.seeds}, 12 colour x shape each):\n")
    print(f"| scale | {args.world_motion}: all | seen | held out ({args.held_out}) | mean step px | identity | background |")
    print("|---|---|---|---|---|---|---|")
    for scale in args.scales:
        clips = [c for key, chunk in zip(keys, results) if key == ("clips", scale, None) for c in chunk]
        g = group_scores(clips, (args.held_out,))
        print(f"| {scale:g} | {g['all']['direction']:.2f} | {g['seen']['direction']:.2f} | "
              f"{g['held out']['direction']:.2f} | {g['all']['mean_speed']:.2f} | {g['all']['identity']:.2f} | "
              f"{g['all']['background']:.2f} |")
    if not args.long_scales:
        return
    print(f"\nLong videos ({args.long_frames} frames, `generate --extend context` defaults, seeds 0-{args.long_seeds - 1}; "
          "means; last 15 % against the first 15 %):\n")
    print("| scale | prompt | motion (all) | motion, last 15 % | background change (max) | colour | identity | "
          "step ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for scale in args.long_scales:
        for prompt in prompts:
            rows = [r for key, r in zip(keys, results) if key == ("long", scale, prompt)]
            last = [r["drift"]["last"] for r in rows]

            def mean(values) -> float:
                return statistics.fmean(values)

            print(f"| {scale:g} | {prompt} | {mean(r['direction'] for r in rows):.2f} | "
                  f"{mean(x['motion'] for x in last):.2f} | {mean(x['background'] for x in last):.1f} "
                  f"({max(x['background'] for x in last):.1f}) | {mean(x['colour'] for x in last):.2f} | "
                  f"{mean(x['identity'] for x in last):.2f} | {mean(x['speed_ratio'] for x in last):.2f} |")


if __name__ == "__main__":
    main()
