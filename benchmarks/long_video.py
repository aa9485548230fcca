"""Long videos side by side: `ldm-video generate` (VidRD, both reuse orders) vs diffusers' FreeNoise.

The same toy base, the same temporal attention (a demo run's `motion/`, attention only, and its MotionAdapter
export for diffusers), prompts, seeds, DDIM schedule, steps and guidance. FreeNoise is diffusers' own
`AnimateDiffPipeline.enable_free_noise` (context windows fused with pyramid weights, shuffled context noise),
its context length set to our clip length (8) and its stride to our overlap (4), with and without
`enable_free_noise_split_inference`. Every run is its own subprocess (peak RSS is the child's), run
interleaved: for each length, each method in turn. Scored with the toy world's ground truth: direction of the
steps over the whole video and across clip seams / window boundaries (every 8 frames for FreeNoise), seam
jump ratio, identity, background persistence, mean step (px / frame).

    ldm-video demo --out DEMO   # trains the temporal layers this compares (about 17 min on 2 cores)
    python benchmarks/long_video.py --motion DEMO/motion --adapter DEMO/motion_adapter --frames 64 128 256
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

METHODS = ("vidrd-forward", "vidrd-reversed", "freenoise", "freenoise-split")
PROMPTS = ("a red circle moving right", "a blue triangle moving right")


def run_one(spec: dict) -> None:
    """In a child process: sample one video, save it as .npy, print seconds and peak RSS as JSON."""
    import torch

    torch.set_num_threads(1)
    method, frames, out = spec["method"], spec["frames"], Path(spec["out"])
    start = time.perf_counter()
    if method.startswith("vidrd"):
        from ldm_video.toy.motion_eval import ClipSampling, ToyGenerator

        order = method.split("-")[1]
        gen = ToyGenerator(spec["base"], spec["motion"], ClipSampling(
            clip_frames=8, steps=spec["steps"], guidance=spec["guidance"], noise_prior="progressive", noise_alpha=0.5,
            overlap=4, reuse_order=order))
        loaded = time.perf_counter()
        video = gen.video(spec["prompt"], frames, spec["seed"])
        seam_drop = gen.seam_drop()
    else:
        from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

        from ldm_video import load_base
        from ldm_video.infer.pipeline import to_uint8

        base = load_base(spec["base"])
        pipe = AnimateDiffPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer,
                                   unet=base.unet, motion_adapter=MotionAdapter.from_pretrained(spec["adapter"]),
                                   scheduler=DDIMScheduler.from_config(base.scheduler.config))
        pipe.set_progress_bar_config(disable=True)
        pipe.enable_free_noise(context_length=8, context_stride=4)
        if method == "freenoise-split":
            pipe.enable_free_noise_split_inference(spatial_split_size=256, temporal_split_size=8)
        loaded = time.perf_counter()
        result = pipe(spec["prompt"], num_frames=frames, height=64, width=64, num_inference_steps=spec["steps"],
                      guidance_scale=spec["guidance"], generator=torch.Generator().manual_seed(spec["seed"]),
                      output_type="pt", decode_chunk_size=8)
        video = to_uint8(result.frames[0] * 2 - 1).numpy()  # (f, H, W, 3)
        seam_drop = 0
    seconds = time.perf_counter() - loaded
    np.save(out, video)
    print(json.dumps({"seconds": seconds, "load_seconds": loaded - start, "seam_drop": seam_drop,
                      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))


def score(video: np.ndarray, prompt: str, seam_drop: int) -> dict:
    from ldm_video.toy.metrics import score_video

    s = score_video(video, prompt, clip_frames=8, seam_drop=seam_drop).as_dict()
    return {k: s[k] for k in ("direction", "seam_direction", "seam_jump", "identity", "background",
                              "mean_speed")}


def main() -> None:
    from ldm_video.toy import TOY_BASE

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--motion", help="a demo run's motion/ folder (attention-only temporal layers)")
    parser.add_argument("--adapter", help="its MotionAdapter export (the demo's motion_adapter/)")
    parser.add_argument("--base", default=str(TOY_BASE), help="toy base (default: the shipped one)")
    parser.add_argument("--frames", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--work", default="/tmp/long-video-bench", help="folder for the sampled videos")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child's run spec (JSON)
    args = parser.parse_args()
    if args.one:
        return run_one(json.loads(args.one))
    if not (args.motion and args.adapter):
        parser.error("--motion and --adapter are needed (a demo run's motion/ and motion_adapter/)")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[str, int], list[dict]] = {}
    for frames in args.frames:  # interleaved: every method at one length before the next length
        for prompt in PROMPTS:
            for seed in args.seeds:
                for method in args.methods:
                    out = work / f"{method}-{frames}-{PROMPTS.index(prompt)}-{seed}.npy"
                    spec = {"method": method, "frames": frames, "prompt": prompt, "seed": seed, "out": str(out),
                            "base": args.base, "motion": args.motion, "adapter": args.adapter,
                            "steps": args.steps, "guidance": args.guidance}
                    child = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], check=True,
                                           capture_output=True, text=True)
                    timing = json.loads(child.stdout.strip().splitlines()[-1])
                    row = {**timing, **score(np.load(out), prompt, timing["seam_drop"])}
                    rows.setdefault((method, frames), []).append(row)
                    print(f"{method:>16} {frames:>4} frames, {prompt!r} seed {seed}: "
                          f"{row['seconds'] / frames:.3f} s/frame, RSS {row['peak_rss_gib']:.2f} GiB, direction "
                          f"{row['direction']:.2f}, seams {row['seam_direction']:.2f}, jump {row['seam_jump']:.2f}",
                          flush=True)
    print("\n| method | frames | s / frame | peak RSS GiB | direction | across seams | seam jump | identity | "
          "background | mean step px |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (method, frames), group in rows.items():
        m = {k: statistics.fmean(r[k] for r in group) for k in group[0] if isinstance(group[0][k], float)}
        print(f"| {method} | {frames} | {m['seconds'] / frames:.3f} | {m['peak_rss_gib']:.2f} | {m['direction']:.2f} | "
              f"{m['seam_direction']:.2f} | {m['seam_jump']:.2f} | {m['identity']:.2f} | {m['background']:.2f} | "
              f"{m['mean_speed']:.2f} |")


if __name__ == "__main__":
    main()
