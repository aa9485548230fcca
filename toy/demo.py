"""`ldm-video demo`: the whole job on a CPU, on the toy world — the README's main command.

Teaches one motion, MotionLoRA / MotionDirector style (AnimateDiff, Guo et al., ICLR 2024; Zhao et al., 2023):
the temporal layers of the shipped toy base (an SD 2.1-layout image model for the toy world) are fine-tuned on
toy videos of one motion (pacing by default: left and right, turning at the frame margins, so that a long video
never runs out of the frame) with one shape held out (circles by default), with iid training noise
(PYoCo's correlated priors, Ge et al., ICCV 2023, measured slower on this task: `DemoTraining.noise_prior`),
three quarters of the clips (a quarter for the straight motions) with their first 4 frames given clean (frame
conditioning, as LVDM, He et al. 2022), so that the layers learn to continue given frames. Then short clips of
every colour x shape (seen and held out) and long videos made clip by clip, each clip continuing the previous
clip's last frames and guided by them (`generate --extend context`, with history guidance, Song et al. 2025;
VidRD's FNR / PNS / DSG, Gu et al., 2023, for the untrained model and with `--extend vidrd`), are scored with the
toy world's ground truth, next to the untrained model (fresh temporal layers: the image model run per frame) on
the same prompts and seeds; the long videos' drift is scored per segment and as FramePack's start-end contrast
(`ldm_video.toy.drift`). The motion module is exported as a diffusers MotionAdapter.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ldm_video.errors import LdmVideoError
from ldm_video.flags import add_deprecated, add_threads
from ldm_video.infer.vidrd import REUSE_ORDERS
from ldm_video.toy.demo_report import motion_label, table
from ldm_video.toy.world import SHAPES

# the motions the demo can teach: the straight ones, and the toy world's lasting ones (never out of the frame)
DEMO_MOTIONS = ("orbiting", "pacing", "left", "right", "up", "down")
# the world's speed range (px per frame) and the share of training clips given context frames, per motion. Others
# (the straight motions, orbiting): slower than the full world's 0.75-2, so that a long video keeps the object in
# the 64 px frame ("One motion, learnt and transferred"), and a quarter of the clips with context ("Temporal
# layers trained to continue").
# Pacing: 1-2 px and three quarters, which paced more in short clips and in the held-out circle's long videos
# than 0.5-1 px and a quarter (benchmarks/RESULTS.md, "Faster pacing, more clips with context", 2026-12-06)
DEMO_SPEEDS = {"pacing": (1.0, 2.0)}  # the others (0.5, 1.0)
DEMO_CONTEXT_PROBS = {"pacing": 0.75}  # the others 0.25
# Pacing: given frames noised up to timestep 100 in training, which paced 1,024-frame videos the most of 0 / 100 /
# 200 / 400 (benchmarks/RESULTS.md, "How much noise on the given frames", 2026-12-07); the others 0 (not measured)
DEMO_CONTEXT_NOISE = {"pacing": 100}


@dataclass(frozen=True)
class DemoWorld:
    """The toy clips the demo trains on."""

    # the one motion taught (MotionLoRA-style). Pacing (horizontal, turning at the margins) lasts for ever inside the
    # frame and is learnt in short clips (benchmarks/RESULTS.md, "Faster pacing, more clips with context"); orbiting
    # was not; the straight ones run out of the frame after a few dozen frames ("Long videos that last", 2026-12-03)
    motion: str = "pacing"
    # shape left out of the training clips, to test transfer to unseen subjects. Circles: trained on squares and
    # triangles the motion reaches held-out circles (0.91 of steps at 2500 steps, 48 clips); trained on circles and
    # squares it reaches held-out triangles more slowly (0.69); benchmarks/RESULTS.md, "Which shape to hold out"
    held_out: str = "circle"
    videos: int = 480  # toy training videos written to OUT/data, one clip each, every colour, the other shapes
    # the shapes of the world: trained on all but the held-out one, scored on all. More than the full world's three
    # (world.EXTRA_SHAPES) need a base pretrained on them (`toy pretrain --shapes`); benchmarks/RESULTS.md, "Five shapes"
    shapes: tuple[str, ...] = SHAPES
    frames: int = 8  # frames per training video and clip
    # the world's speed range, px per frame (None: `DEMO_SPEEDS` for the motion)
    min_speed: float | None = None
    max_speed: float | None = None

    def __post_init__(self) -> None:
        from ldm_video.toy.world import ALL_SHAPES, canonical_shapes

        if self.motion not in DEMO_MOTIONS:
            raise LdmVideoError(f"--motion {self.motion!r}: choose one of {', '.join(DEMO_MOTIONS)}")
        low, high = DEMO_SPEEDS.get(self.motion, (0.5, 1.0))
        object.__setattr__(self, "min_speed", low if self.min_speed is None else self.min_speed)
        object.__setattr__(self, "max_speed", high if self.max_speed is None else self.max_speed)
        try:  # once each, in one order: the data, the long videos' seen shape and the mosaic do not hang on it
            shapes = canonical_shapes(self.shapes)
        except ValueError:
            shapes = ()
        if len(shapes) < 2:
            raise LdmVideoError(f"--shapes {' '.join(self.shapes)}: name two or more of {', '.join(ALL_SHAPES)}")
        object.__setattr__(self, "shapes", shapes)
        if self.held_out not in self.shapes:
            raise LdmVideoError(f"--held-out {self.held_out!r}: choose one of --shapes {', '.join(self.shapes)}")
        if self.videos < 1:
            raise LdmVideoError(f"--videos must be >= 1, got {self.videos}")

    @property
    def seen_shapes(self) -> tuple[str, ...]:
        return tuple(s for s in self.shapes if s != self.held_out)


@dataclass(frozen=True)
class DemoTraining:
    """How the temporal layers are fine-tuned (`ldm-video train`'s flags of the same names)."""

    # optimiser steps of temporal fine-tuning: held-out circles move right in 0.74 / 0.81 / 0.91 of steps after
    # 1500 / 2000 / 2500 iid steps (48 clips each; benchmarks/RESULTS.md, "Which shape to hold out")
    steps: int = 2500
    batch_size: int = 4  # clips per step
    lr: float = 1e-3  # AdamW learning rate (3e-3 measured worse: benchmarks/RESULTS.md)
    # PYoCo prior of the training (and sampling) noise. The ablation on this task at 1500 steps (3 seeds):
    # iid learns the motion fastest (held out 0.65), progressive alpha 0.5 0.44, mixed alpha 1 0.35, progressive
    # alpha 2 0.30 (benchmarks/RESULTS.md): PYoCo's correlated priors slow motion learning on the toy world
    noise_prior: str = "iid"
    noise_alpha: float = 0.0  # ignored by iid; the correlation of mixed / progressive
    # train --timestep-bias: off. "later" x3 on the noisiest half measured +0.11 held-out direction at 1500 steps
    # (two training seeds), not confirmed since (its small-recipe check measured noise: benchmarks/RESULTS.md)
    timestep_bias: str = "none"
    timestep_bias_multiplier: float = 1.0
    timestep_bias_portion: float = 0.25
    lora_rank: int = 0  # LoRA on the spatial attention, trained with the temporal layers (0 = off)
    # share of training clips given context frames (with extend "context"; None: `DEMO_CONTEXT_PROBS` for the
    # motion, else 0.25, which kept the short clips of "moving right" closer to training without: held out 0.85
    # against 0.83 at 0.5, with long videos as good, 0.91 / 0.93)
    context_prob: float | None = None
    # train --context-noise: given frames noised to a random timestep up to this (with extend "context"; None:
    # `DEMO_CONTEXT_NOISE` for the motion, else 0)
    context_noise: int | None = None
    # train --context-slowdown: a share of the context clips' given frames replayed slower; 0.3 and 0.5 helped the
    # layers leave a margin after a turn, not long videos, and cost short clips (benchmarks/RESULTS.md, "Where long
    # videos lose the motion")
    context_slowdown: float = 0.0
    # train --context-causal (with --motion-norm per-frame): given frames attend only to each other, so long
    # videos run them once per clip (keys and values cached) instead of at every step
    context_causal: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise LdmVideoError(f"--steps must be >= 1, got {self.steps}")
        if self.context_noise is not None and not 0 <= self.context_noise < 1000:
            raise LdmVideoError(f"--context-noise must be a timestep in [0, 1000), got {self.context_noise}")


@dataclass(frozen=True)
class DemoSampling:
    """What the demo samples and scores: short clips of every colour x shape, and long videos."""

    # short clips scored per colour x shape (x 4 colours x the world's 3 shapes). A clip's direction is close to all or
    # nothing, so 2 seeds (8 held-out clips) put the same model anywhere in 0.66-0.93 held out; 6 seeds give 24
    # held-out and 18 per-colour clips (benchmarks/RESULTS.md, "How noisy the demo's report is")
    clip_seeds: int = 6
    untrained_clip_seeds: int = 2  # the same for the untrained layers, whose direction stays at chance (0.21-0.33)
    long_frames: int = 256  # frames of each generated long video (pacing never leaves the frame)
    drift_segments: int = 8  # the long videos' drift is reported per segment of long_frames / drift_segments
    clip_frames: int = 8  # frames denoised together (VidRD N)
    overlap: int = 4  # VidRD M; with extend "context", the frames each later clip is given (train --context-frames)
    # how the tuned model's long videos go on from clip to clip: "context" trains the temporal layers to continue
    # `overlap` given frames (in `context_prob` of the training clips) and gives each later clip the previous one's
    # last frames: 0.93 of long-video steps the learnt way, seams 0.81, against 0.62 / 0.06 for VidRD on the same
    # model (8 videos, benchmarks/RESULTS.md, "Temporal layers trained to continue given frames"). "vidrd" trains
    # without and uses FNR / PNS / DSG. generate anchors the colours of context videos (--context-anchor) and guides
    # by the given frames (--context-guidance).
    extend: str = "context"
    reuse_order: str = "forward"  # VidRD prompt-frame order (generate --reuse-order) of VidRD's long videos
    sample_steps: int = 20  # DDIM steps per clip
    guidance: float = 5.0  # classifier-free guidance

    def __post_init__(self) -> None:
        if min(self.clip_seeds, self.untrained_clip_seeds, self.drift_segments) < 1:
            raise LdmVideoError("the clip seeds and the drift segments must be >= 1")
        if self.long_frames < 2 * self.clip_frames:
            raise LdmVideoError(f"--long-frames {self.long_frames}: a long video needs at least two clips "
                                f"({2 * self.clip_frames} frames)")
        if self.extend not in ("context", "vidrd"):
            raise LdmVideoError(f"--extend {self.extend!r}: choose context or vidrd")


@dataclass(frozen=True)
class DemoConfig:
    """What the demo does, in three parts; see the README for how long the defaults take on a 2-core CPU."""

    base: str | None = None  # toy base folder (default: the one shipped in toy/assets/base)
    world: DemoWorld = DemoWorld()
    training: DemoTraining = DemoTraining()
    sampling: DemoSampling = DemoSampling()
    seed: int = 0  # data, training and sampling seed

    def __post_init__(self) -> None:
        if self.training.context_prob is None:
            prob = DEMO_CONTEXT_PROBS.get(self.world.motion, 0.25)
            object.__setattr__(self, "training", replace(self.training, context_prob=prob))
        if self.training.context_noise is None:
            noise = DEMO_CONTEXT_NOISE.get(self.world.motion, 0) if self.sampling.extend == "context" else 0
            object.__setattr__(self, "training", replace(self.training, context_noise=noise))
        s = self.sampling
        if s.extend == "context" and not 0 < s.overlap < self.world.frames:
            raise LdmVideoError(f"--extend context gives each clip {s.overlap} frames of the last: that needs "
                                f"clips of more than {s.overlap} frames, got {self.world.frames}")
        if self.training.context_noise and s.extend != "context":
            raise LdmVideoError("--context-noise noises the frames given by --extend context; --extend "
                                f"{s.extend} gives none")
        if self.training.context_causal and s.extend != "context":
            raise LdmVideoError("--context-causal trains the frames given by --extend context; --extend "
                                f"{s.extend} gives none")

    @property
    def context_frames(self) -> int:
        """train --context-frames: the frames each later clip of a long video is given (0 for VidRD)."""
        return self.sampling.overlap if self.sampling.extend == "context" else 0

    @property
    def long_prompts(self) -> tuple[str, str]:
        """One long video of a seen shape and one of the held-out shape."""
        from ldm_video.toy.world import caption_for

        w = self.world
        return (caption_for("red", w.seen_shapes[0], w.motion), caption_for("blue", w.held_out, w.motion))


def _mosaic(clips: list, cfg: DemoConfig) -> np.ndarray:
    """uint8 (f, 4*64, shapes*64, 3): the first seed's clip of every colour (rows) x shape (columns)."""
    from ldm_video.toy.world import COLOURS

    first = {(c.colour, c.shape): c.frames for c in clips if c.seed == cfg.seed}
    rows = [np.concatenate([first[(colour, shape)] for shape in cfg.world.shapes], axis=2) for colour in COLOURS]
    return np.concatenate(rows, axis=1)


def write_data(cfg: DemoConfig, out: Path, progress: bool = True) -> Path:
    """Step 1: toy videos of the one motion, every colour, the seen shapes only."""
    from ldm_video.toy.world import WorldConfig, write_folder

    world = WorldConfig(motions=(cfg.world.motion,), shapes=cfg.world.seen_shapes, min_speed=cfg.world.min_speed,
                        max_speed=cfg.world.max_speed)
    return write_folder(out, cfg.world.videos, num_frames=cfg.world.frames, seed=cfg.seed, config=world, progress=progress)


def train_motion(cfg: DemoConfig, base: str, data: Path, out: Path, progress: bool = True):
    """Step 2: fine-tune the temporal layers on `data` into `out` (what --motion reads); the TrainResult."""
    from ldm_video.train.config import TrainConfig
    from ldm_video.train.trainer import train

    context = ({"context_frames": cfg.context_frames, "context_prob": cfg.training.context_prob,
                "context_noise": cfg.training.context_noise, "context_slowdown": cfg.training.context_slowdown,
                "context_causal": cfg.training.context_causal}
               if cfg.context_frames else {})
    if context.get("context_causal"):
        context["motion_norm"] = "per-frame"  # the given frames' path must not mix with the others' (causal.py)
    result = train(TrainConfig.from_flat(
        base=base, data=str(data), output_dir=str(out), frames=cfg.world.frames, resolution="64",
        cache_latents=True, batch_size=cfg.training.batch_size, lr=cfg.training.lr, max_steps=cfg.training.steps, noise_prior=cfg.training.noise_prior,
        noise_alpha=cfg.training.noise_alpha, timestep_bias=cfg.training.timestep_bias,
        timestep_bias_multiplier=cfg.training.timestep_bias_multiplier, timestep_bias_portion=cfg.training.timestep_bias_portion,
        temporal_layers="attn", attention_heads=4, images="off", lora_rank=cfg.training.lora_rank, **context,
        checkpoint_every=max(cfg.training.steps, 1), seed=cfg.seed, overwrite=True), progress=progress)  # the demo's own folder
    shutil.rmtree(out / "latent-cache", ignore_errors=True)  # the encoded clips; the data folder keeps the videos
    return result


def _check_base_shapes(base: str, shapes: tuple[str, ...]) -> None:
    """A one-line error when the base's recipe says it was not pretrained on every shape of the demo's world (a
    recipe without `shapes` is one of the full world's three)."""
    import yaml

    recipe_file = Path(base) / "recipe.yaml"
    if not recipe_file.is_file():
        return  # not a toy base of ours: nothing says which shapes it draws
    try:
        recipe = yaml.safe_load(recipe_file.read_text()) or {}
        known = tuple(recipe.get("shapes", SHAPES))
    except (OSError, yaml.YAMLError, AttributeError, TypeError) as err:
        raise LdmVideoError(f"{recipe_file}: not a toy recipe ({err})") from None
    missing = [s for s in shapes if s not in known]
    if missing:
        raise LdmVideoError(f"{base}: the base was pretrained on {', '.join(known)}, not {', '.join(missing)}; "
                            f"pretrain one with `ldm-video toy pretrain --output-dir DIR --shapes {' '.join(shapes)}` "
                            "and pass --base DIR")


def run_demo(out: str | Path, cfg: DemoConfig = DemoConfig(), progress: bool = True, workers: int = 1) -> dict:
    """Run every step of the demo into `out`; returns the report (also written as report.json / report.md).

    `workers` > 1 samples and scores the videos on that many processes of one torch thread each
    (`ldm_video.toy.demo_jobs`); 1 in this process."""
    from ldm_video.export import export
    from ldm_video.toy import TOY_BASE
    from ldm_video.toy.demo_jobs import ClipJob, LongJob, run_jobs
    from ldm_video.toy.motion_eval import ClipSampling, group_scores
    from ldm_video.toy.video import write_video

    out = Path(out)
    base = cfg.base or str(TOY_BASE)
    if not (Path(base) / "model_index.json").exists():
        raise LdmVideoError(f"{base}: no toy base model there; run `ldm-video toy pretrain --out DIR` and pass "
                            "--base DIR")
    _check_base_shapes(base, cfg.world.shapes)
    start = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"[demo] {name} done in {timings[name]:.0f} s", flush=True)

    t0 = time.perf_counter()
    print(f"[demo] 1/4 writing {cfg.world.videos} toy videos ({motion_label(cfg.world.motion)}) of {', '.join(cfg.world.seen_shapes)} "
          f"({cfg.world.held_out}s held out) to {out / 'data'}", flush=True)
    write_data(cfg, out / "data", progress)
    lap("data", t0)

    t0 = time.perf_counter()
    noise = f", noised up to timestep {cfg.training.context_noise}" if cfg.training.context_noise else ""
    context = (f", {cfg.context_frames} context frames in {cfg.training.context_prob:g} of the clips{noise}"
               if cfg.context_frames else "")
    print(f"[demo] 2/4 fine-tuning the temporal layers ({cfg.training.steps} steps, {cfg.training.noise_prior} prior, "
          f"alpha {cfg.training.noise_alpha}{context})", flush=True)
    result = train_motion(cfg, base, out / "data", out / "motion", progress)
    losses = [x for x in result.losses if not math.isnan(x)]
    lap("train", t0)

    t0 = time.perf_counter()
    s = cfg.sampling
    runs = (("tuned", str(out / "motion"), s.clip_seeds), ("untrained", None, s.untrained_clip_seeds))
    sampling = ClipSampling(clip_frames=s.clip_frames, steps=s.sample_steps, guidance=s.guidance,
                            noise_prior=cfg.training.noise_prior, noise_alpha=cfg.training.noise_alpha)
    clip_jobs = [(name, ClipJob(base, motion, cfg.world.motion, seed, sampling, cfg.world.shapes))
                 for name, motion, seeds in runs for seed in range(cfg.seed, cfg.seed + seeds)]
    flags = ("--frames", str(s.long_frames), "--clip-frames", str(s.clip_frames), "--overlap", str(s.overlap),
             "--steps", str(s.sample_steps), "--guidance", str(s.guidance), "--height", "64", "--width", "64",
             "--seed", str(cfg.seed), "--noise-prior", cfg.training.noise_prior, "--noise-alpha",
             str(cfg.training.noise_alpha))
    long_jobs = [((prompt, name), LongJob(base, prompt, out / f"video_{i}_{name}.mp4", motion, extend, flags,
                                          s.reuse_order, s.drift_segments))
                 for i, prompt in enumerate(cfg.long_prompts)
                 for name, motion, extend in (("tuned", str(out / "motion"), s.extend), ("untrained", None, "vidrd"))]
    print(f"[demo] 3/4 sampling and scoring, on {min(workers, len(clip_jobs) + len(long_jobs))} process(es): short "
          f"clips of every colour x shape ({s.clip_seeds} seed(s) fine-tuned, {s.untrained_clip_seeds} untrained) "
          f"and {len(cfg.long_prompts)} x {s.long_frames}-frame videos clip by clip (fine-tuned: {s.extend}; "
          "untrained, for comparison: vidrd)", flush=True)
    jobs = [job for _, job in long_jobs + clip_jobs]  # the long videos first: they take longest
    results = run_jobs(jobs, workers, progress, desc="videos")
    long_results, clip_results = results[:len(long_jobs)], results[len(long_jobs):]
    clips = {}
    for name, _, _ in runs:
        scored = [clip for (kind, _), chunk in zip(clip_jobs, clip_results) if kind == name for clip in chunk]
        clips[name] = group_scores(scored, (cfg.world.held_out,))
        write_video(out / f"clips_{name}.mp4", _mosaic(scored, cfg))
    long: dict = {}
    for ((prompt, name), job), scores in zip(long_jobs, long_results):
        long.setdefault(prompt, {})[f"{name}_file"] = job.out.name
        long[prompt][name] = scores
    lap("sampling", t0)

    t0 = time.perf_counter()
    print("[demo] 4/4 exporting the motion module as a diffusers MotionAdapter", flush=True)
    export(out / "motion", "motion-adapter", out / "motion_adapter")
    if cfg.training.lora_rank:
        export(out / "motion", "kohya-lora", out / "lora_kohya.safetensors")
    lap("export", t0)

    report = {
        "config": asdict(cfg),
        "base": base,
        "train": {"steps": result.step, "loss_first_10": sum(losses[:10]) / max(1, len(losses[:10])),
                  "loss_last_10": sum(losses[-10:]) / max(1, len(losses[-10:]))},
        "clips": clips,
        "long": long,
        "seconds": {**timings, "total": round(time.perf_counter() - start, 1)},
        "threads": torch.get_num_threads(),
        "workers": workers,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(table(report) + "\n")
    print(table(report))
    print(f"[demo] finished in {report['seconds']['total']:.0f} s; clips_*.mp4 (rows: colours, columns: shapes), "
          f"video_*.mp4, motion_adapter/ and report.json are in {out}")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ldm_video.toy.world import ALL_SHAPES, EXTRA_SHAPES

    d = DemoConfig()
    parser.epilog = (
        f"Steps: write {d.world.videos} toy videos of one motion ({motion_label(d.world.motion)}), one shape held out (OUT/data) "
        f"-> fine-tune the temporal layers of the shipped toy base ({d.training.steps} steps, {d.training.noise_prior} noise, "
        f"{d.sampling.overlap} context frames in {d.training.context_prob:g} of the clips, noised up to timestep "
        f"{d.training.context_noise}; OUT/motion) -> score short clips of every "
        "colour x shape, fine-tuned and untrained (OUT/clips_*.mp4) -> generate a long video of a seen and of the "
        f"held-out shape clip by clip ({d.sampling.long_frames} frames, each clip continuing the last {d.sampling.overlap} frames; "
        "OUT/video_*.mp4) -> export a diffusers MotionAdapter (OUT/motion_adapter) -> report the toy world's ground "
        "truth per group, and the long videos' drift segment by segment and start against end (OUT/report.json, "
        "OUT/report.md). About 10 minutes (7 of them training) and 0.65 GB of memory per process on a 2-core CPU "
        "with --workers 2 (2026-12-07); other 2-core VMs trained 1.6x faster or 1.3x slower.")
    parser.add_argument("--output-dir", dest="out", default="ldm-video-demo",
                        help="run folder for everything the demo writes (default: ./ldm-video-demo)")
    add_deprecated(parser, "--out", "--output-dir", "out")
    parser.add_argument("--base", default=None, help="toy base folder (default: the shipped toy base)")
    parser.add_argument("--motion", choices=DEMO_MOTIONS, default=d.world.motion,
                        help=f"the one motion to teach (default {d.world.motion}: left and right, turning at the frame margins, so "
                             "long videos never run into the frame edge; the straight ones run out of frame after "
                             "a few dozen frames at the learnt speed; orbiting was not learnt in the demo's budget)")
    add_deprecated(parser, "--direction", "--motion", "motion", choices=DEMO_MOTIONS)
    parser.add_argument("--held-out", choices=ALL_SHAPES, default=d.world.held_out,
                        help=f"shape left out of training, to test transfer (default {d.world.held_out})")
    parser.add_argument("--shapes", nargs="+", choices=ALL_SHAPES, default=list(d.world.shapes), metavar="SHAPE",
                        help=f"the world's shapes, trained on all but --held-out and scored on all (default "
                             f"{' '.join(d.world.shapes)}; {' and '.join(EXTRA_SHAPES)} need a base pretrained on them: "
                             "`ldm-video toy pretrain --shapes ...`, then --base)")
    parser.add_argument("--steps", type=int, default=d.training.steps, help=f"fine-tuning steps (default {d.training.steps})")
    parser.add_argument("--videos", type=int, default=d.world.videos, help=f"toy training videos (default {d.world.videos})")
    parser.add_argument("--long-frames", type=int, default=d.sampling.long_frames,
                        help=f"frames of each long video (default {d.sampling.long_frames})")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of data, training and sampling (default 0)")
    parser.add_argument("--lr", type=float, default=d.training.lr, help=f"fine-tuning learning rate (default {d.training.lr})")
    parser.add_argument("--lora-rank", type=int, default=d.training.lora_rank,
                        help="also train LoRA of this rank on the spatial attention, exported as a kohya file (default 0)")
    parser.add_argument("--extend", choices=("context", "vidrd"), default=d.sampling.extend,
                        help=f"how the fine-tuned model's long videos go on from clip to clip (default {d.sampling.extend}: "
                             f"train with {d.sampling.overlap} context frames and give each clip the previous one's last "
                             f"{d.sampling.overlap} frames; vidrd: train without, and tie clips by VidRD's FNR / PNS / DSG, "
                             "which measured far worse across seams, see README)")
    parser.add_argument("--context-noise", type=int, default=None, metavar="T",
                        help="train with the given frames noised to a random timestep up to T (train --context-noise; "
                             f"default {DEMO_CONTEXT_NOISE['pacing']} for pacing, 0 for the others; --extend context "
                             "only): long videos pace more, short clips a little less; 0 turns it off")
    parser.add_argument("--context-causal", action=argparse.BooleanOptionalAction, default=d.training.context_causal,
                        help="train the given frames block-causal (they attend only to each other; motion modules "
                             "normalised per frame), so that long videos run them once per clip instead of at every "
                             f"step (default {d.training.context_causal}; --extend context only)")
    parser.add_argument("--reuse-order", choices=REUSE_ORDERS, default=d.sampling.reuse_order,
                        help=f"VidRD prompt-frame order of the VidRD long videos (default {d.sampling.reuse_order}: measured "
                             "better than reversed, VidRD's released code, on a model that moves)")
    add_threads(parser)
    from ldm_video.toy.demo_jobs import default_workers

    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="processes that sample and score the videos, one torch thread each; the toy model "
                             "gains little from a second thread but runs at full speed in a second process "
                             f"(default: the CPU cores, at most 8: {default_workers()} here; 1 = in this process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (the step lines stay)")


def run(args: argparse.Namespace) -> int:
    from ldm_video.flags import set_threads

    set_threads(args.threads)
    if Path(args.out).exists() and any(Path(args.out).iterdir()):
        raise LdmVideoError(f"{args.out}: folder exists and is not empty; pick a new --output-dir")
    cfg = DemoConfig(base=args.base, seed=args.seed,
                     world=DemoWorld(motion=args.motion, held_out=args.held_out, videos=args.videos,
                                     shapes=tuple(args.shapes)),
                     training=DemoTraining(steps=args.steps, lr=args.lr, lora_rank=args.lora_rank,
                                           context_noise=args.context_noise, context_causal=args.context_causal),
                     sampling=DemoSampling(long_frames=args.long_frames, reuse_order=args.reuse_order,
                                           extend=args.extend))
    if args.no_progress:
        from ldm_video.flags import hide_library_progress

        hide_library_progress()
    if args.workers < 1:
        raise LdmVideoError(f"--workers must be >= 1, got {args.workers}")
    run_demo(args.out, cfg, progress=not args.no_progress, workers=args.workers)
    return 0
