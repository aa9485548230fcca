"""Long videos side by side on one model: `--extend context` (with and without history guidance, weighed apart
from the prompt with `--history-scale`, and the anchor of the first clip's colours), VidRD (forward order) and
diffusers' FreeNoise, scored for drift against the toy world's ground truth.

The same toy base, the same temporal attention (a demo run's `motion/`, attention only, and its MotionAdapter
export for diffusers), prompts, seeds, DDIM schedule, steps and guidance (or, with `--context-steps`, fewer steps
for context: the two compared at equal seconds per frame). FreeNoise is diffusers' own
`AnimateDiffPipeline.enable_free_noise` (context windows fused with pyramid weights, shuffled context noise), its
context length set to our clip length and its stride to the clip length less our overlap. Every run is its own
subprocess (peak RSS is the child's, seconds exclude the model load), run interleaved: for each length, prompt and
seed, each method in turn. Scored with `ldm_video.toy.drift`: the captioned motion over the whole video and in its
last 15 %, and the last 15 % against the first (FramePack's start-end contrast): background change in grey levels,
object present, captioned colour, identity as at the start, step length ratio; plus the seam jump ratio.

    ldm-video demo --output-dir DEMO   # trains the temporal layers this compares
    python benchmarks/long_video.py --motion DEMO/motion --adapter DEMO/motion_adapter --frames 64 256 1024
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

# context: generate's defaults for a context-trained --motion (the anchor and history guidance on);
# context-noguide: without history guidance (generate --no-context-guidance); context-plain: without either;
# context-nocache: a block-causal --motion (train --context-causal) with its given frames run at every step under
# the mask instead of once per clip (the same video: what the key-value cache saves)
METHODS = ("context", "context-noguide", "context-plain", "context-nocache", "vidrd-forward", "freenoise",
           "freenoise-split")
DEFAULT_METHODS = ("context", "context-noguide", "vidrd-forward", "freenoise")
HISTORY_METHODS = ("context", "context-nocache")  # the methods with history guidance, which --history-scale weighs


def run_one(spec: dict) -> None:
    """In a child process: sample one video, save it as .npy, print seconds and peak RSS as JSON."""
    import torch

    torch.set_num_threads(1)
    method, frames, out = spec["method"], spec["frames"], Path(spec["out"])
    start = time.perf_counter()
    if not method.startswith("freenoise"):
        from ldm_video.toy.motion_eval import ClipSampling, ToyGenerator

        extend = "vidrd" if method.startswith("vidrd") else "context"
        gen = ToyGenerator(spec["base"], spec["motion"], ClipSampling(
            clip_frames=spec["clip_frames"], steps=spec["steps"], guidance=spec["guidance"], noise_prior="iid",
            noise_alpha=0.0, overlap=spec["overlap"], reuse_order="forward", extend=extend,
            context_noise=spec["context_noise"] if extend == "context" else 0,
            context_anchor=method != "context-plain",
            context_guidance=method not in ("context-noguide", "context-plain"),
            context_cache=method != "context-nocache",
            history_scale=spec["history_scale"], history_free=spec["history_free"]))
        loaded = time.perf_counter()
        video = gen.video(spec["prompt"], frames, spec["seed"])
        seam_drop = gen.seam_drop()
    else:
        from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

        from ldm_video import load_base
        from ldm_video.video_file import to_uint8

        base = load_base(spec["base"])
        pipe = AnimateDiffPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer,
                                   unet=base.unet, motion_adapter=MotionAdapter.from_pretrained(spec["adapter"]),
                                   scheduler=DDIMScheduler.from_config(base.scheduler.config))
        pipe.set_progress_bar_config(disable=True)
        n = spec["clip_frames"]
        pipe.enable_free_noise(context_length=n, context_stride=n - spec["overlap"])
        if method == "freenoise-split":
            pipe.enable_free_noise_split_inference(spatial_split_size=256, temporal_split_size=n)
        loaded = time.perf_counter()
        result = pipe(spec["prompt"], num_frames=frames, height=64, width=64, num_inference_steps=spec["steps"],
                      guidance_scale=spec["guidance"], generator=torch.Generator().manual_seed(spec["seed"]),
                      output_type="pt", decode_chunk_size=8)
        video = to_uint8(result.frames[0] * 2 - 1).numpy()  # (f, H, W, 3)
        seam_drop = 0  # window boundaries every clip_frames frames
    seconds = time.perf_counter() - loaded
    np.save(out, video)
    print(json.dumps({"seconds": seconds, "load_seconds": loaded - start, "seam_drop": seam_drop,
                      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))


def score(video: np.ndarray, prompt: str, clip_frames: int, seam_drop: int) -> dict:
    """Overall motion and seam jump, the motion of the first clip (sampled from the prompt alone) and of the next
    32 frames, and the last 15 % against the first (ldm_video.toy.drift)."""
    from ldm_video.toy.drift import drift_passes, start_end_drift
    from ldm_video.toy.metrics import analyse_video, score_analyses
    from ldm_video.toy.world import parse_caption

    analyses = analyse_video(video)
    caption = parse_caption(prompt)
    s = score_analyses(analyses, *caption, clip_frames=clip_frames, seam_drop=seam_drop)
    first = score_analyses(analyses[:clip_frames], *caption).direction
    after = score_analyses(analyses[clip_frames:clip_frames + 32], *caption).direction
    d = start_end_drift(video, prompt, analyses=analyses)
    last = d["last"]
    return {"motion": s.direction, "seam_jump": s.seam_jump if s.seam_jump is not None else float("nan"),
            "first_clip_motion": first, "next_32_motion": after,
            "last_motion": last["motion"], "background": last["background"], "present": last["present"],
            "colour": last["colour"], "identity": last["identity"], "speed_ratio": last["speed_ratio"],
            "passes": float(all(drift_passes(last).values()))}


COLUMNS = ("motion", "last_motion", "background", "present", "colour", "identity", "speed_ratio", "seam_jump",
           "passes")


def defaults(args: argparse.Namespace) -> tuple[int, int, int]:
    """The given frames' noise, the clip length and the overlap where not given: as `generate` takes them from the
    --motion (the overlap: its trained --context-frames where a context method runs, else half a clip), checked as
    `generate` checks them."""
    from ldm_video.checkpoint import trained_clip, trained_context_noise
    from ldm_video.infer.run_defaults import CONTEXT_NOISE_SHARE, context_overlap

    context_noise = args.context_noise
    if context_noise is None:
        context_noise = round(trained_context_noise(args.motion) * CONTEXT_NOISE_SHARE)
    clip_frames = args.clip_frames if args.clip_frames is not None else trained_clip(args.motion)[0] or 8
    if any(m.startswith("context") for m in args.methods):  # checked as generate checks it
        overlap = context_overlap(argparse.Namespace(motion=args.motion, overlap=args.overlap, clip_frames=clip_frames))
    else:
        overlap = args.overlap if args.overlap is not None else clip_frames // 2
    return context_noise, clip_frames, overlap


def main() -> None:
    from ldm_video.toy import TOY_BASE

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--motion", help="a demo run's motion/ folder (attention-only temporal layers)")
    parser.add_argument("--adapter", help="its MotionAdapter export (the demo's motion_adapter/)")
    parser.add_argument("--base", default=str(TOY_BASE), help="toy base (default: the shipped one)")
    parser.add_argument("--frames", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    parser.add_argument("--clip-frames", type=int, default=None,
                        help="frames per clip / FreeNoise window (default: what the --motion was trained on)")
    parser.add_argument("--overlap", type=int,
                        help="given frames per context clip, VidRD prompt frames, FreeNoise window overlap (default, "
                             "with a context method: the frames the --motion was trained to continue, as generate "
                             "takes them; else half a clip)")
    parser.add_argument("--prompts", nargs="+", default=["a red square pacing", "a blue circle pacing"],
                        help="toy captions (default: a seen and the held-out shape of the demo's motion)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps per clip / FreeNoise video (default 20)")
    parser.add_argument("--context-steps", type=int, default=None,
                        help="DDIM steps of the context modes only (default --steps): context at fewer steps against "
                             "FreeNoise at --steps compares the two at equal seconds per frame")
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--context-noise", type=int, default=None,
                        help="context modes: the timestep of the given frames' noise (default: what generate "
                             "uses for this --motion)")
    parser.add_argument("--history-scale", type=float, default=None,
                        help="context: the given frames' guidance weight apart from the prompt's (generate "
                             "--history-scale; default: both at --guidance, two U-Net rows)")
    parser.add_argument("--history-free", choices=("noised", "dropped"), default=None,  # infer.pipeline.HISTORY_FREE
                        help="context: history guidance's rows without the given frames run the new frames alone "
                             "(dropped) or hold their places noised (generate --history-free; default: generate's)")
    parser.add_argument("--work", default="/tmp/long-video-bench", help="folder for the sampled videos")
    parser.add_argument("--rows", help="also append every run's row as a JSON line to this file")
    parser.add_argument("--table", nargs="+", metavar="ROWS", help="only print the table of earlier --rows files "
                        "(e.g. two runs of this script side by side, one per core)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child's run spec (JSON)
    args = parser.parse_args()
    if args.one:
        return run_one(json.loads(args.one))
    if args.table:
        rows = {}
        for path in args.table:
            for line in Path(path).read_text().splitlines():
                row = json.loads(line)
                steps = row.get("steps", 20)  # rows written before steps were recorded ran at 20
                guided = row["method"] in HISTORY_METHODS and row.get("guidance", 5.0) > 1
                free = row.get("history_free", "noised" if guided else None)  # older rows: the form before
                key = (row["method"], row["frames"], steps, row.get("history_scale"), free)
                rows.setdefault(key, []).append(row)
        return print_table(rows, row["context_noise"])
    if (args.history_scale is not None or args.history_free is not None) and (
            args.guidance <= 1 or not set(args.methods) & set(HISTORY_METHODS)):
        parser.error(f"--history-scale and --history-free shape history guidance's rows: they need --guidance > 1 "
                     f"and one of the methods {', '.join(HISTORY_METHODS)}")
    if not (args.motion and args.adapter):
        parser.error("--motion and --adapter are needed (a demo run's motion/ and motion_adapter/)")
    from ldm_video.errors import LdmVideoError
    from ldm_video.infer.pipeline import DEFAULT_HISTORY_FREE

    try:
        context_noise, clip_frames, overlap = defaults(args)
    except LdmVideoError as e:  # a --motion that is not a temporal-layer folder, or not one context can run
        parser.error(str(e))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[tuple[str, int, int, float | None, str | None], list[dict]] = {}
    for frames in args.frames:  # interleaved: every method at one length before the next length
        for prompt in args.prompts:
            for seed in args.seeds:
                for method in args.methods:
                    # named by the prompt's words, so that runs side by side on other prompts or seeds may share --work
                    steps = steps_of(method, args)
                    scale = args.history_scale if method in HISTORY_METHODS else None
                    guided = method in HISTORY_METHODS and args.guidance > 1  # history guidance runs
                    free = (args.history_free or DEFAULT_HISTORY_FREE) if guided else None
                    tag = (f"-w{scale:g}" if scale is not None else "") + (f"-{free}" if free else "")
                    out = work / f"{method}{tag}-{frames}-{steps}-{'_'.join(prompt.split())}-{seed}.npy"
                    spec = {"method": method, "frames": frames, "prompt": prompt, "seed": seed, "out": str(out),
                            "base": args.base, "motion": args.motion, "adapter": args.adapter,
                            "steps": steps, "guidance": args.guidance, "context_noise": context_noise,
                            "clip_frames": clip_frames, "overlap": overlap, "history_scale": scale,
                            "history_free": free}
                    child = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], check=True,
                                           capture_output=True, text=True)
                    timing = json.loads(child.stdout.strip().splitlines()[-1])
                    row = {"method": method, "frames": frames, "prompt": prompt, "seed": seed,
                           "context_noise": context_noise, "clip_frames": clip_frames, **timing,
                           **score(np.load(out), prompt, clip_frames, timing["seam_drop"])}
                    row.update(steps=steps, guidance=args.guidance, history_scale=scale, history_free=free)
                    rows.setdefault((method, frames, steps, scale, free), []).append(row)
                    if args.rows:
                        with open(args.rows, "a") as f:
                            f.write(json.dumps(row) + "\n")
                    print(f"{method + tag:>15} {frames:>5} frames, {steps} steps, {prompt!r} seed {seed}: "
                          f"{row['seconds'] / frames:.3f} s/frame, RSS {row['peak_rss_gib']:.2f} GiB, motion "
                          f"{row['motion']:.2f} (first clip {row['first_clip_motion']:.2f}, next 32 frames "
                          f"{row['next_32_motion']:.2f}, last 15 % {row['last_motion']:.2f}), background "
                          f"{row['background']:.1f}, identity {row['identity']:.2f}, speed x{row['speed_ratio']:.2f}",
                          flush=True)
    print_table(rows, context_noise)


def steps_of(method: str, args: argparse.Namespace) -> int:
    """A method's DDIM steps: --context-steps for the context modes when given, else --steps."""
    return args.context_steps if method.startswith("context") and args.context_steps else args.steps


def print_table(rows: dict[tuple[str, int, int, float | None, str | None], list[dict]], context_noise: int) -> None:
    """The markdown table of the runs: means over prompts x seeds per method and length."""
    print(f"\ncontext modes: given frames noised to timestep {context_noise}; means over prompts x seeds; the last "
          "7 columns are the last 15 % of each video against its first 15 %\n")
    print("| method | frames | steps | s / frame | peak RSS GiB | motion (all) | motion | background change | "
          "present | colour | identity | step ratio | seam jump | videos passing every bar |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (method, frames, steps, scale, free), group in sorted(
            rows.items(), key=lambda kv: (kv[0][1], METHODS.index(kv[0][0]), -kv[0][2], kv[0][3] or 0, kv[0][4] or "")):
        m = {k: statistics.fmean(r[k] for r in group) for k in ("seconds", "peak_rss_gib", *COLUMNS)}
        label = method + (f", history scale {scale:g}" if scale is not None else "") \
            + (f", history {free}" if free else "")
        print(f"| {label} | {frames} | {steps} | {m['seconds'] / frames:.3f} | {m['peak_rss_gib']:.2f} | "
              f"{m['motion']:.2f} | "
              f"{m['last_motion']:.2f} | {m['background']:.1f} | {m['present']:.2f} | {m['colour']:.2f} | "
              f"{m['identity']:.2f} | {m['speed_ratio']:.2f} | {m['seam_jump']:.2f} | "
              f"{sum(r['passes'] for r in group):.0f} / {len(group)} |")
    print("\nmotion of the first clip (from the prompt alone) -> the next 32 frames, means:")
    for (method, frames, steps, scale, free), group in rows.items():
        if all("first_clip_motion" in r for r in group):  # not in rows written before these columns
            first, after = (statistics.fmean(r[k] for r in group) for k in ("first_clip_motion", "next_32_motion"))
            print(f"- {method}, {frames} frames, {steps} steps: {first:.2f} -> {after:.2f}")


if __name__ == "__main__":
    main()
