"""`ldm-video demo`: the whole job on a CPU, on the toy world — the README's main command.

Fine-tunes the temporal layers of the shipped toy base (an SD 2.1-layout image model for the toy world) on toy
videos with PYoCo's progressive prior (Ge et al., ICCV 2023), generates a long video clip by clip with VidRD's
FNR / PNS / DSG (Gu et al., 2023), exports the motion module as a diffusers MotionAdapter, and scores the
videos with the toy world's ground-truth metrics, next to the untrained model (fresh temporal layers: the
image model run per frame) on the same prompts and seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ldm_video.errors import LdmVideoError
from ldm_video.infer.vidrd import REUSE_ORDERS


@dataclass(frozen=True)
class DemoConfig:
    """What the demo does; the defaults finish in about 6 minutes on 2 CPU cores (README)."""

    base: str | None = None  # toy base folder (default: the one shipped in ldm_video/toy/assets/base)
    videos: int = 480  # toy training videos written to OUT/data, one clip each
    frames: int = 8  # frames per training video and clip
    steps: int = 2500  # optimiser steps of temporal fine-tuning
    batch_size: int = 4  # clips per step
    lr: float = 1e-3  # AdamW learning rate
    noise_prior: str = "progressive"  # PYoCo prior of the training noise
    # PYoCo found alpha 2 best for progressive on UCF-101; on the toy world at this budget alpha 2 barely lowers
    # the loss (the shared noise cannot be averaged away across frames) and flips backgrounds mid-clip, while
    # 0.5 learns coherent objects (benchmarks/RESULTS.md, toy ablation)
    noise_alpha: float = 0.5
    lora_rank: int = 0  # LoRA on the spatial attention, trained with the temporal layers (0 = off)
    prompts: tuple[str, ...] = ("a red circle moving right", "a blue square moving down")  # generated videos
    long_frames: int = 64  # frames of each generated long video
    clip_frames: int = 8  # frames denoised together (VidRD N)
    overlap: int = 4  # VidRD M
    reuse_order: str = "reversed"  # VidRD prompt-frame order (generate --reuse-order); see README
    sample_steps: int = 20  # DDIM steps per clip
    guidance: float = 5.0  # classifier-free guidance
    seed: int = 0  # data, training and sampling seed


def _generate(base: str, prompt: str, out: Path, cfg: DemoConfig, motion: Path | None) -> None:
    from ldm_video.cli import main

    args = ["generate", "--base", base, "--prompt", prompt, "--frames", str(cfg.long_frames),
            "--clip-frames", str(cfg.clip_frames), "--overlap", str(cfg.overlap), "--steps", str(cfg.sample_steps),
            "--guidance", str(cfg.guidance), "--height", "64", "--width", "64", "--seed", str(cfg.seed),
            "--noise-prior", cfg.noise_prior, "--noise-alpha", str(cfg.noise_alpha), "--reuse-order", cfg.reuse_order,
            "--out", str(out), "--quiet"]
    if motion is not None:
        args += ["--motion", str(motion)]
    if main(args) != 0:
        raise LdmVideoError(f"generating {out} failed (see the message above)")


def _scores(video: Path, prompt: str, cfg: DemoConfig) -> dict:
    from ldm_video.infer.generate import default_seam_drop
    from ldm_video.infer.video_io import read_video
    from ldm_video.toy.metrics import score_video

    frames = read_video(video)
    seam_drop = default_seam_drop(cfg.reuse_order, cfg.overlap, cfg.clip_frames)  # what _generate's call kept
    return {"frames": int(frames.shape[0]),
            **score_video(frames, prompt, clip_frames=cfg.clip_frames, seam_drop=seam_drop).as_dict()}


ROWS = (("present", "object present"), ("colour", "captioned colour"), ("shape", "captioned shape"),
        ("identity", "identity persists"), ("background", "background persists"), ("direction", "moves as captioned"),
        ("speed_consistency", "speed consistency"), ("mean_speed", "mean step, px per frame (real 0.75-2)"),
        ("seam_jump", "seam jump ratio (1 = seamless)"))


def table(report: dict) -> str:
    """A short markdown table: each metric for the fine-tuned model and the untrained one, per prompt."""
    lines = ["| metric | " + " | ".join(f"{p} (tuned / untrained)" for p in report["prompts"]) + " |",
             "|---|" + "---|" * len(report["prompts"])]
    for key, label in ROWS:
        cells = []
        for prompt in report["prompts"]:
            tuned, fresh = report["videos"][prompt]["tuned"][key], report["videos"][prompt]["untrained"][key]
            cells.append(" / ".join("n/a" if v is None else f"{v:.2f}" for v in (tuned, fresh)))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_demo(out: str | Path, cfg: DemoConfig = DemoConfig(), progress: bool = True) -> dict:
    """Run every step of the demo into `out`; returns the report (also written as report.json / report.md)."""
    from ldm_video.export import export
    from ldm_video.toy import TOY_BASE
    from ldm_video.toy.world import write_folder
    from ldm_video.train.config import TrainConfig
    from ldm_video.train.trainer import train

    out = Path(out)
    base = cfg.base or str(TOY_BASE)
    if not (Path(base) / "model_index.json").exists():
        raise LdmVideoError(f"{base}: no toy base model there; run `ldm-video toy pretrain --out DIR` and pass "
                            "--base DIR")
    start = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"[demo] {name} done in {timings[name]:.0f} s", flush=True)

    t0 = time.perf_counter()
    print(f"[demo] 1/5 writing {cfg.videos} toy videos to {out / 'data'}", flush=True)
    write_folder(out / "data", cfg.videos, num_frames=cfg.frames, seed=cfg.seed, progress=progress)
    lap("data", t0)

    t0 = time.perf_counter()
    print(f"[demo] 2/5 fine-tuning the temporal layers ({cfg.steps} steps, {cfg.noise_prior} prior, "
          f"alpha {cfg.noise_alpha})", flush=True)
    result = train(TrainConfig(
        base=base, data=str(out / "data"), output_dir=str(out / "motion"), frames=cfg.frames, resolution="64",
        cache_latents=True, batch_size=cfg.batch_size, lr=cfg.lr, max_steps=cfg.steps, noise_prior=cfg.noise_prior,
        noise_alpha=cfg.noise_alpha, temporal_layers="attn", attention_heads=4, images="off", lora_rank=cfg.lora_rank,
        checkpoint_every=max(cfg.steps, 1), seed=cfg.seed), progress=progress)
    losses = [x for x in result.losses if not math.isnan(x)]
    shutil.rmtree(out / "motion" / "latent-cache", ignore_errors=True)  # the encoded clips; out/data keeps the videos
    lap("train", t0)

    t0 = time.perf_counter()
    print(f"[demo] 3/5 generating {len(cfg.prompts)} x {cfg.long_frames}-frame videos with VidRD "
          "(fine-tuned, then untrained for comparison)", flush=True)
    videos = {}
    for i, prompt in enumerate(cfg.prompts):
        tuned, fresh = out / f"video_{i}_tuned.mp4", out / f"video_{i}_untrained.mp4"
        _generate(base, prompt, tuned, cfg, out / "motion")
        _generate(base, prompt, fresh, cfg, None)
        videos[prompt] = {"tuned_file": tuned.name, "untrained_file": fresh.name}
    lap("generate", t0)

    t0 = time.perf_counter()
    print("[demo] 4/5 exporting the motion module as a diffusers MotionAdapter", flush=True)
    export(out / "motion", "motion-adapter", out / "motion_adapter")
    if cfg.lora_rank:
        export(out / "motion", "kohya-lora", out / "lora_kohya.safetensors")
    lap("export", t0)

    t0 = time.perf_counter()
    print("[demo] 5/5 scoring the videos with the toy world's ground truth", flush=True)
    for prompt, files in videos.items():
        files["tuned"] = _scores(out / files["tuned_file"], prompt, cfg)
        files["untrained"] = _scores(out / files["untrained_file"], prompt, cfg)
    lap("metrics", t0)

    report = {
        "config": asdict(cfg),
        "base": base,
        "train": {"steps": result.step, "loss_first_10": sum(losses[:10]) / max(1, len(losses[:10])),
                  "loss_last_10": sum(losses[-10:]) / max(1, len(losses[-10:]))},
        "prompts": list(cfg.prompts),
        "videos": videos,
        "seconds": {**timings, "total": round(time.perf_counter() - start, 1)},
        "threads": torch.get_num_threads(),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(table(report) + "\n")
    print(table(report))
    print(f"[demo] finished in {report['seconds']['total']:.0f} s; videos, motion_adapter/ and report.json "
          f"are in {out}")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DemoConfig()
    parser.epilog = (
        f"Steps: write {d.videos} toy videos (OUT/data) -> fine-tune the temporal layers of the shipped toy base "
        f"({d.steps} steps, {d.noise_prior} prior alpha {d.noise_alpha:g}; OUT/motion) -> generate "
        f"{len(d.prompts)} {d.long_frames}-frame videos with VidRD ({d.reuse_order} reuse order), fine-tuned and "
        "untrained (OUT/video_*.mp4) -> "
        "export a diffusers MotionAdapter (OUT/motion_adapter) -> score every video with the toy world's ground "
        "truth (OUT/report.json, OUT/report.md). About 6 minutes and 0.7 GB of memory on 2 CPU cores.")
    parser.add_argument("--out", default="ldm-video-demo", help="output folder (default: ./ldm-video-demo)")
    parser.add_argument("--base", default=None, help="toy base folder (default: the shipped toy base)")
    parser.add_argument("--steps", type=int, default=d.steps, help=f"fine-tuning steps (default {d.steps})")
    parser.add_argument("--videos", type=int, default=d.videos, help=f"toy training videos (default {d.videos})")
    parser.add_argument("--long-frames", type=int, default=d.long_frames,
                        help=f"frames of each generated video (default {d.long_frames})")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of data, training and sampling (default 0)")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"fine-tuning learning rate (default {d.lr})")
    parser.add_argument("--lora-rank", type=int, default=d.lora_rank,
                        help="also train LoRA of this rank on the spatial attention, exported as a kohya file (default 0)")
    parser.add_argument("--reuse-order", choices=REUSE_ORDERS, default=d.reuse_order,
                        help=f"VidRD prompt-frame order of the long videos (default {d.reuse_order}, VidRD's released "
                             "code; forward keeps a motion's direction across seams, see README)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if Path(args.out).exists() and any(Path(args.out).iterdir()):
        raise LdmVideoError(f"{args.out}: folder exists and is not empty; pick a new --out")
    cfg = DemoConfig(base=args.base, steps=args.steps, videos=args.videos, long_frames=args.long_frames,
                     seed=args.seed, lr=args.lr, lora_rank=args.lora_rank, reuse_order=args.reuse_order)
    run_demo(args.out, cfg)
    return 0
