"""PYoCo's Table 5 / Fig. 7 and VidRD's long-video comparison in miniature, on the toy world.

Temporal fine-tuning of the shipped toy image model with iid, mixed and progressive noise priors (several
alphas), each over several seeds; every run generates the same prompts, scored with the toy world's
ground-truth metrics and a Frechet distance to real toy videos. Then, for long videos, VidRD (FNR + PNS + DSG)
against independent clips, on the progressive model.

    python benchmarks/toy_ablation.py --seeds 3 --steps 200 > ablation.md

Prints markdown tables (mean +- std over seeds). PYoCo's UCF-101 numbers for comparison are in SPEC §3.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ldm_video.cli import main
from ldm_video.infer.video_io import read_video
from ldm_video.toy import TOY_BASE
from ldm_video.toy.metrics import score_video, toy_frechet_distance
from ldm_video.toy.world import sample as toy_sample
from ldm_video.toy.world import write_folder
from ldm_video.train.config import TrainConfig
from ldm_video.train.trainer import train

PRIORS = (("iid", 0.0), ("mixed", 1.0), ("mixed", 4.0), ("progressive", 0.5), ("progressive", 2.0),
          ("progressive", 4.0))
PROMPTS = ("a red circle moving right", "a blue square moving down", "a green triangle moving left",
           "a yellow circle moving up")


def generate(base: str, motion: Path, prompt: str, out: Path, frames: int, seed: int, extend: str,
             prior: str, alpha: float, steps: int) -> dict:
    args = ["generate", "--base", base, "--motion", str(motion), "--prompt", prompt, "--frames", str(frames),
            "--clip-frames", "8", "--steps", str(steps), "--guidance", "5", "--height", "64", "--width", "64",
            "--seed", str(seed), "--noise-prior", prior, "--noise-alpha", str(alpha), "--extend", extend,
            "--out", str(out), "--quiet"]
    if extend == "vidrd":
        args += ["--overlap", "4"]
    assert main(args) == 0
    frames_ = read_video(out)
    scores = score_video(frames_, prompt, clip_frames=8, seam_drop=1 if extend == "vidrd" else 0).as_dict()
    return {**scores, "video": frames_}


def mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None and v == v]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default=str(TOY_BASE), help="toy base folder (default: the shipped one)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200, help="fine-tuning steps per run")
    parser.add_argument("--videos", type=int, default=96, help="toy training videos")
    parser.add_argument("--sample-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="toy-ablation-"))
    write_folder(work / "data", args.videos, num_frames=16, seed=1234, progress=False)
    real = [toy_sample(10_000 + i, 16).frames for i in range(32)]  # held-out real toy videos

    rows: dict[str, dict[str, list]] = {}
    for prior, alpha in PRIORS:
        key = f"{prior} (alpha {alpha:g})" if prior != "iid" else "iid"
        rows[key] = {"direction": [], "colour": [], "shape": [], "identity": [], "fd": [], "loss": []}
        for seed in range(args.seeds):
            out = work / f"{prior}-{alpha}-{seed}"
            result = train(TrainConfig(base=args.base, data=str(work / "data"), output_dir=str(out), frames=8,
                                       resolution="64", batch_size=4, lr=5e-4, max_steps=args.steps,
                                       noise_prior=prior, noise_alpha=alpha, temporal_layers="attn",
                                       attention_heads=4, images="off", checkpoint_every=args.steps, seed=seed),
                           progress=False)
            losses = [x for x in result.losses if x == x]
            rows[key]["loss"].append(sum(losses[-20:]) / max(1, len(losses[-20:])))
            generated, scores = [], []
            for i, prompt in enumerate(PROMPTS):  # 16-frame clips: 2 clips of 8 with VidRD
                s = generate(args.base, out, prompt, out / f"v{i}.mp4", 16, seed, "vidrd", prior, alpha,
                             args.sample_steps)
                generated.append(s.pop("video"))
                scores.append(s)
            for m in ("direction", "colour", "shape", "identity"):
                rows[key][m].append(statistics.mean(s[m] for s in scores))
            rows[key]["fd"].append(toy_frechet_distance(real, generated))
            print(f"# done {key} seed {seed} ({time.perf_counter() - start:.0f} s)", flush=True)

    print(f"\n## Toy ablation: noise priors (benchmarks/toy_ablation.py --seeds {args.seeds} --steps {args.steps})\n")
    print(f"Machine: {platform.machine()} CPU, torch {torch.__version__}, {args.threads} thread(s); "
          f"{args.videos} toy training videos, {len(PROMPTS)} prompts x 16 frames per run; mean ± std over "
          f"{args.seeds} seeds.\n")
    print("| prior | moves as captioned | colour | shape | identity | toy FD (lower is better) | final loss |")
    print("|---|---|---|---|---|---|---|")
    for key, r in rows.items():
        print(f"| {key} | {mean_std(r['direction'])} | {mean_std(r['colour'])} | {mean_std(r['shape'])} | "
              f"{mean_std(r['identity'])} | {mean_std(r['fd'])} | {mean_std(r['loss'])} |")

    # long videos: VidRD vs independent clips on the progressive (alpha 2) model of seed 0
    motion = work / "progressive-2.0-0"
    long_rows: dict[str, dict[str, list]] = {"vidrd": {}, "independent": {}}
    for extend in long_rows:
        acc: dict[str, list] = {"seam_jump": [], "direction": [], "identity": []}
        for seed in range(args.seeds):
            for i, prompt in enumerate(PROMPTS[:2]):
                s = generate(args.base, motion, prompt, work / f"long-{extend}-{seed}-{i}.mp4", 64, seed, extend,
                             "progressive", 2.0, args.sample_steps)
                for m in acc:
                    acc[m].append(s[m])
        long_rows[extend] = acc
    print("\n### Long videos (64 frames, clips of 8): VidRD vs independent clips, progressive alpha 2 model\n")
    print("| extension | seam jump ratio (1 = seamless) | moves as captioned | identity |")
    print("|---|---|---|---|")
    for extend, acc in long_rows.items():
        print(f"| {extend} | {mean_std(acc['seam_jump'])} | {mean_std(acc['direction'])} | "
              f"{mean_std(acc['identity'])} |")
    print(f"\nTotal time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main_cli()
