"""Does a motion module continue given frames the way the toy world moves? A continuation probe, in minutes.

A long `--extend context` video is a chain of continuations: each clip is given the last 4 frames of the one before
and makes the rest. One continuation that turns back in mid-frame costs the pacing score every step until the
object next reaches a margin (`ldm_video.toy.metrics.motion_steps_ok`), so the long-video motion bar needs
continuations that almost never turn back: a 1,024-frame video is 255 of them. This probe measures them one at a
time, from the world's own frames rather than the model's: each clip of the toy world (pacing at the demo's speeds,
drawn so that its ground truth reaches no margin within the clip) is encoded by the base's VAE, its first 4 frames
are given to the module exactly as `generate --extend context` gives a clip its predecessor's frames
(`VideoSampler.continue_from`, the anchor and history guidance on), the new frames are sampled and decoded, and
the object's net displacement over them is scored against the ground truth's: followed (at least a quarter of the
ground truth's travel its way), turned back (as far the other way), or short (neither: a stall, or a turn within
the clip). Because the given frames are the world's, a module that turns back here does so by itself, not because
of drift in its own earlier frames.

    ldm-video demo --output-dir DEMO   # trains the temporal layers this probes
    python benchmarks/continuation_probe.py --motion DEMO/motion --steps 12 --guidance 4 --rows probe.jsonl
    python benchmarks/continuation_probe.py --table probe.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

PROBE_SEEDS = 30_000_000  # world seeds from here: away from the demo's training data and the direction probe's


def world_clips(prompt: str, count: int, frames: int, speeds: tuple[float, float], given: int,
                after_turn: bool = False, extent: float | None = None,
                y: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` toy clips of `prompt`, (frames (f, H, W, 3) uint8, ground-truth centres (f, 2)), whose ground truth
    moves one way throughout (no margin reached), or with `after_turn` turns back at a margin within the `given`
    frames and then moves one way; `extent` / `y` pin the object's size / height."""
    from ldm_video.toy.world import WorldConfig, centres, parse_caption, render, sample_spec

    config = WorldConfig(min_speed=speeds[0], max_speed=speeds[1])
    clips, seed = [], PROBE_SEEDS
    while len(clips) < count:
        # the spec `world.sample(seed, ...)` draws, rendered only when it is kept
        spec = sample_spec(np.random.default_rng(seed), frames, config, parse_caption(prompt))
        seed += 1
        spec = replace(spec, extent=spec.extent if extent is None else extent,
                       start=(spec.start[0], spec.start[1] if y is None else y))
        truth = centres(spec, config)  # (f, 2)
        dx = np.diff(truth[:, 0])  # (f - 1,)
        new = dx[given - 1:]  # the steps from the last given frame on
        one_way = np.all(new > 0) or np.all(new < 0)
        turned = np.any(np.sign(dx[:given - 1]) != np.sign(new[0]))  # a reflection among the given frames
        if one_way and turned == after_turn:
            clips.append((render(spec, config), truth))
    return clips


def outcome(track_x: np.ndarray, truth_x: np.ndarray, given: int) -> tuple[str, float, float]:
    """(followed | turned back | short | lost, share of new steps the ground truth's way, travel / ground truth's)
    of one continued clip, from its object's x per frame (NaN where absent) and the ground truth's."""
    new = track_x[given - 1:]  # (f - given + 1,): the last given frame, then the new ones
    if np.isnan(new).any():
        return "lost", float("nan"), float("nan")
    sense = np.sign(truth_x[-1] - truth_x[given - 1])
    travel = (new[-1] - new[0]) * sense / abs(truth_x[-1] - truth_x[given - 1])  # signed, 1 = the ground truth's
    steps_ok = float(np.mean(np.sign(np.diff(new)) == sense))
    kind = "followed" if travel >= 0.25 else "turned back" if travel <= -0.25 else "short"
    return kind, steps_ok, float(travel)


def probe(motion: str, base: str, prompt: str, clips: int, steps: int, guidance: float, after_turn: bool = False,
          extent: float | None = None, y: float | None = None) -> dict:
    """Continue `clips` world clips of `prompt` with the module at `motion`; the outcome shares and timing."""
    from ldm_video import load_base
    from ldm_video.checkpoint import trained_clip, trained_context_noise
    from ldm_video.infer.model import load_video_model
    from ldm_video.infer.pipeline import LongVideoConfig, SamplingConfig, VideoSampler, encode_prompt
    from ldm_video.infer.run_defaults import CONTEXT_NOISE_SHARE
    from ldm_video.infer.vidrd import VidRDConfig
    from ldm_video.toy.demo import DEMO_SPEEDS
    from ldm_video.toy.metrics import analyse_video, centroid_track
    from ldm_video.toy.world import parse_caption
    from ldm_video.video_file import to_uint8

    parts = load_base(base, components=("unet", "vae", "text_encoder", "tokenizer", "scheduler"))
    model = load_video_model(parts, motion, None, 1.0)
    frames = trained_clip(motion)[0] or 8
    given = 4
    text = encode_prompt(parts.tokenizer, parts.text_encoder, prompt, "", guidance, "cpu", torch.float32)
    long = LongVideoConfig(num_frames=2 * frames - given, extend="context",
                            vidrd=VidRDConfig(clip_frames=frames, overlap=given), seam_drop=given,
                            context_noise=round(trained_context_noise(motion) * CONTEXT_NOISE_SHARE),
                            context_anchor=True, context_guidance=guidance > 1)
    kinds, steps_ok, travel = [], [], []
    start = time.perf_counter()
    speeds = DEMO_SPEEDS.get(parse_caption(prompt)[2], (0.5, 1.0))
    for i, (pixels, truth) in enumerate(world_clips(prompt, clips, frames, speeds, given, after_turn, extent, y)):
        sampling = SamplingConfig(scheduler="ddim", steps=steps, guidance=guidance, noise_prior="iid",
                                  height=pixels.shape[1], width=pixels.shape[2], seed=i)
        sampler = VideoSampler(model=model, vae=parts.vae, scheduler_config=dict(parts.scheduler.config),
                               sampling=sampling, video=long, progress=False)
        generator = torch.Generator().manual_seed(i)
        with torch.no_grad():
            video = torch.from_numpy(pixels[:given]).permute(3, 0, 1, 2)[None].float() / 127.5 - 1  # (1, 3, M, H, W)
            sampler.continue_from(sampler.vae.encode(video))  # (1, 4, M, h, w), posterior mode at U-Net scale
            noise = torch.randn(sampler.latent_shape, generator=generator)  # (1, 4, N, h, w)
            out = sampler.denoise(1, noise, text, generator)  # (1, 4, N, h, w)
            decoded = sampler.vae.decode(out)  # (1, 3, N, H, W)
        track = centroid_track(analyse_video(to_uint8(decoded)[0].numpy()))  # (N, 2)
        kind, ok, moved = outcome(track[:, 0], truth[:, 0], given)
        kinds.append(kind)
        steps_ok.append(ok)
        travel.append(moved)
    seconds = time.perf_counter() - start
    share = {k: kinds.count(k) / len(kinds) for k in ("followed", "turned back", "short", "lost")}
    followed = [t for k, t in zip(kinds, travel) if k == "followed"]
    return {"motion": motion, "prompt": prompt, "clips": clips, "steps": steps, "guidance": guidance,
            "after_turn": after_turn, "extent": extent, "y": y, **share,
            "steps_ok": float(np.nanmean(steps_ok)) if len(steps_ok) else float("nan"),
            "travel": float(np.median(followed)) if followed else float("nan"), "seconds_per_clip": seconds / clips}


COLUMNS = ("followed", "turned back", "short", "lost", "steps_ok", "travel", "seconds_per_clip")


def print_table(rows: list[dict]) -> None:
    print("| motion | prompt | clips from | extent / y px | steps | guidance | clips | " + " | ".join(COLUMNS) + " |")
    print("|---" * (7 + len(COLUMNS)) + "|")
    for r in rows:
        look = " / ".join("any" if r.get(k) is None else f"{r[k]:g}" for k in ("extent", "y"))
        cells = " | ".join(f"{r[c]:.2f}" for c in COLUMNS)
        where = "after a turn" if r.get("after_turn") else "mid-frame"
        print(f"| {r['motion']} | {r['prompt']} | {where} | {look} | {r['steps']} | {r['guidance']:g} | {r['clips']} | "
              f"{cells} |")


def main() -> None:
    from ldm_video.toy import TOY_BASE

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--motion", nargs="+", help="demo runs' motion/ folders (temporal layers trained with "
                        "context frames)")
    parser.add_argument("--base", default=str(TOY_BASE), help="toy base (default: the shipped one)")
    parser.add_argument("--prompts", nargs="+", default=["a red square pacing", "a blue circle pacing"],
                        help="toy captions (default: a seen and the held-out shape of the demo's motion)")
    parser.add_argument("--clips", type=int, default=48, help="world clips continued per prompt (default 48)")
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps per clip (default 20)")
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--after-turn", action="store_true", help="clips whose ground truth turns back at a margin "
                        "within the given frames: does the module leave the margin (default: mid-frame clips)")
    parser.add_argument("--extent", type=float, help="pin the object's extent in px (default: the world's 14-22)")
    parser.add_argument("--y", type=float, help="pin the object's height in px (default: anywhere it fits)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one probe per core)")
    parser.add_argument("--rows", help="also append every row as a JSON line to this file")
    parser.add_argument("--table", nargs="+", metavar="ROWS", help="only print the table of earlier --rows files")
    args = parser.parse_args()
    if args.table:
        return print_table([json.loads(line) for path in args.table for line in Path(path).read_text().splitlines()])
    if not args.motion:
        parser.error("--motion is needed (a demo run's motion/)")
    torch.set_num_threads(args.threads)
    rows = []
    for motion in args.motion:
        for prompt in args.prompts:
            row = probe(motion, args.base, prompt, args.clips, args.steps, args.guidance, args.after_turn,
                        args.extent, args.y)
            rows.append(row)
            if args.rows:
                with open(args.rows, "a") as f:
                    f.write(json.dumps(row) + "\n")
            print(f"{motion} {prompt!r}: followed {row['followed']:.2f}, turned back {row['turned back']:.2f}, "
                  f"short {row['short']:.2f}, {row['seconds_per_clip']:.2f} s per clip", flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
