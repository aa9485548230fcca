"""PYoCo's prior ablation (Ge et al., ICCV 2023, Table 5 / Fig. 7) in miniature, on a motion the toy world can learn.

The demo's task (`ldm-video demo`): toy clips of one straight motion ("moving right"), one shape held out of
training. The temporal layers of the shipped toy image model are fine-tuned with iid, mixed and progressive
noise priors, and the same video U-Net is trained from scratch (random spatial weights, every weight trained),
each over several seeds. Every run is scored after 1/4, 1/2 and all of its steps: 8-frame clips of every colour
x shape, the learnt direction on seen and on held-out shapes, jitter, identity and a Frechet distance to real
one-motion toy clips.

    python benchmarks/toy_ablation.py --seeds 3 > ablation.md        # the demo's budget (DemoTraining.steps)
    python benchmarks/toy_ablation.py --runs iid mixed-1 --steps 1500   # a subset, e.g. one per process

The data are the demo's (`ldm_video.toy.demo.write_data`: its world speed and seed), except that triangles are held
out by default (`--held-out`), as in the recorded ablation; the demo itself now holds out circles.

Fine-tuning runs read one latent cache made by `ldm-video prepare` (identical clips for every run) and train
through the product trainer; a run is scored at each quarter by stopping and resuming it (resume equals an
uninterrupted run: tests/test_train.py). The from-scratch baseline is a short loop over the same cache and the
same objective functions (the trainer trains only temporal layers and LoRA). Prints markdown (mean +- std over
seeds). PYoCo's UCF-101 numbers are in SPEC §3.
"""

from __future__ import annotations

import argparse
import math
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ldm_video.cli import main
from ldm_video.toy import TOY_BASE
from ldm_video.toy.demo import DemoConfig, DemoTraining, DemoWorld, write_data
from ldm_video.toy.metrics import toy_frechet_distance
from ldm_video.toy.motion_eval import ClipSampling, ToyGenerator, group_scores, sample_clips
from ldm_video.toy.world import WorldConfig
from ldm_video.toy.world import sample as toy_sample
from ldm_video.train.config import TrainConfig
from ldm_video.train.trainer import train

PRIORS = (("progressive", 0.5), ("iid", 0.0), ("mixed", 1.0), ("progressive", 2.0))  # the demo's first
RUNS = ("progressive-0.5", "iid", "mixed-1", "progressive-2", "scratch")  # --runs names, in that order
COLUMNS = ("direction seen", "direction held out", "jitter", "identity", "fd")


def score(base: str, motion: Path, prior: str, alpha: float, motion_word: str, held_out: str, seeds: int,
          real: list) -> dict[str, float]:
    """The demo's short-clip scores of one model, plus the toy FD against `real` clips."""
    generator = ToyGenerator(base, str(motion), ClipSampling(noise_prior=prior, noise_alpha=alpha))
    clips = sample_clips(generator, motion_word, seeds, seed_offset=1000)
    groups = group_scores(clips, (held_out,))
    return {"direction seen": groups["seen"]["direction"], "direction held out": groups["held out"]["direction"],
            "jitter": 1.0 - groups["all"]["speed_consistency"], "identity": groups["all"]["identity"],
            "fd": toy_frechet_distance(real, [c.frames for c in clips])}


def train_from_scratch(base: str, cache: Path, out: Path, stops: list[int], prior: str, alpha: float, seed: int,
                       lr: float):
    """The video U-Net of the toy base's shape with random spatial weights, all weights trained on the cache.

    Yields, at each step count in `stops`, a toy-base copy whose unet/ holds the trained spatial weights and
    whose motion/ holds the temporal layers (`generate --base OUT --motion OUT/motion` samples it).
    """
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from ldm_video.checkpoint import save_temporal
    from ldm_video.config import VideoUNetConfig
    from ldm_video.train import objective
    from ldm_video.train.cache import LatentCacheDataset
    from ldm_video.video_unet import VideoUNet

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(base, subfolder="unet"))
    model = VideoUNet(unet, VideoUNetConfig(temporal_layers="attn", attention_heads=4))
    model.unet.requires_grad_(True)  # from scratch: the spatial weights train too
    scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    data = LatentCacheDataset(cache)
    latents = torch.stack([data[i]["latents"] for i in range(len(data))]).float()  # (n, 4, f, h, w)
    text = torch.stack([data[i]["text"] for i in range(len(data))]).float()  # (n, seq, dim)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, max(stops) + 1):
        model.train()
        idx = torch.randint(0, len(latents), (4,), generator=generator)  # (b,)
        x0, cond = latents[idx], text[idx].clone()
        drop = torch.rand(4, generator=generator) < 0.1  # caption dropout, as the trainer does
        cond[drop] = data.empty_text.float()
        noise = objective.training_noise(x0, prior, alpha, generator)
        t = objective.sample_timesteps(4, scheduler.config.num_train_timesteps, generator, "cpu")
        x_t = objective.noisy_latents(scheduler, x0, noise, t)
        target = objective.training_target("epsilon", scheduler, x0, noise, t)
        loss = objective.diffusion_loss(model(x_t, t, cond).sample, target)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        if step in stops:
            model.eval()
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(base, out)
            shutil.rmtree(out / "unet")
            model.unet.save_pretrained(out / "unet")
            save_temporal(model, out / "motion", {"frames": 8, "noise_prior": prior, "noise_alpha": alpha})
            yield step, out


def mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default=str(TOY_BASE), help="toy base folder (default: the shipped one)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="training seeds are FIRST .. FIRST+SEEDS-1")
    parser.add_argument("--steps", type=int, default=DemoTraining.steps, help="fine-tuning steps per run (default: "
                        "the demo's); scored after 1/4, 1/2 and all of them")
    parser.add_argument("--lr", type=float, default=DemoTraining.lr)
    parser.add_argument("--videos", type=int, default=DemoWorld.videos, help="toy training clips (8 frames each)")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS,
                        help="which trainings to run (default: all; split them over processes to use more cores)")
    parser.add_argument("--work", default=None, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--motion", default="right", help="the one motion taught")
    parser.add_argument("--held-out", default="triangle",
                        help="shape left out of training (default triangle, as in the recorded ablation; the demo: circle)")
    parser.add_argument("--clip-seeds", type=int, default=2, help="clips per colour x shape per scoring")
    parser.add_argument("--scratch-prior", default="progressive", help="prior of the from-scratch baseline")
    parser.add_argument("--scratch-alpha", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="toy-ablation-"))
    demo = DemoConfig(world=DemoWorld(motion=args.motion, held_out=args.held_out, videos=args.videos),
                      training=DemoTraining(steps=args.steps, lr=args.lr))
    seen = demo.world.seen_shapes
    if not (work / "data").exists():
        write_data(demo, work / "data", progress=False)
    assert main(["prepare", "--base", args.base, "--data", str(work / "data"), "--output-dir", str(work / "cache"),
                 "--frames", "8", "--resolution", "64", "--images", "off"]) == 0
    real_world = WorldConfig(motions=(args.motion,), min_speed=demo.world.min_speed, max_speed=demo.world.max_speed)  # every shape
    real = [toy_sample(10_000 + i, 8, real_world).frames for i in range(64)]
    stops = [args.steps // 4, args.steps // 2, args.steps]
    seeds = range(args.first_seed, args.first_seed + args.seeds)

    rows: dict[str, dict[int, dict[str, list]]] = {}
    for (prior, alpha), name in zip(PRIORS, RUNS):
        if name not in args.runs:
            continue
        key = f"{prior} (alpha {alpha:g})" if prior != "iid" else "iid"
        rows[key] = {s: {c: [] for c in COLUMNS} for s in stops}
        for seed in seeds:
            out = work / f"{prior}-{alpha}-{seed}"
            for stop in stops:  # stop and resume at each quarter: the same run as one uninterrupted
                result = train(TrainConfig.from_flat(base=args.base, cache=str(work / "cache"), output_dir=str(out), frames=8,
                                  resolution="64", images="off", batch_size=4, lr=args.lr, max_steps=stop,
                                  noise_prior=prior, noise_alpha=alpha, temporal_layers="attn", attention_heads=4,
                                  checkpoint_every=stops[0], keep_checkpoints=1, seed=seed,
                                  resume="latest" if stop != stops[0] else None), progress=False)
                if result.interrupted:  # Ctrl-C / SIGTERM: the checkpoint is written, score nothing half-trained
                    raise SystemExit(f"interrupted at step {result.step} of {key} seed {seed}")
                scores = score(args.base, out, prior, alpha, args.motion, args.held_out, args.clip_seeds, real)
                for c, v in scores.items():
                    rows[key][stop][c].append(v)
                print(f"# {key} seed {seed} step {stop}: " + ", ".join(f"{c} {v:.3f}" for c, v in scores.items())
                      + f" ({time.perf_counter() - start:.0f} s)", flush=True)
    key = f"from scratch, {args.scratch_prior} (alpha {args.scratch_alpha:g})"
    if "scratch" in args.runs:
        rows[key] = {s: {c: [] for c in COLUMNS} for s in stops}
    for seed in seeds if "scratch" in args.runs else ():
        for stop, out in train_from_scratch(args.base, work / "cache", work / f"scratch-{seed}", stops,
                                            args.scratch_prior, args.scratch_alpha, seed, args.lr):
            scores = score(str(out), out / "motion", args.scratch_prior, args.scratch_alpha, args.motion,
                           args.held_out, args.clip_seeds, real)
            for c, v in scores.items():
                rows[key][stop][c].append(v)
            print(f"# {key} seed {seed} step {stop}: " + ", ".join(f"{c} {v:.3f}" for c, v in scores.items())
                  + f" ({time.perf_counter() - start:.0f} s)", flush=True)
    other = [toy_sample(20_000 + i, 8, real_world).frames for i in range(64)]
    real_fd = toy_frechet_distance(real, other)

    print(f"\n## Toy ablation on one motion (benchmarks/toy_ablation.py --seeds {args.seeds} --steps {args.steps})\n")
    print(f"Machine: {platform.machine()} CPU, torch {torch.__version__}, {args.threads} thread(s); {args.videos} "
          f"toy clips 'moving {args.motion}' of {', '.join(seen)} ({args.held_out} held out), 8 frames, batch 4, "
          f"lr {args.lr:g}; each scoring: {args.clip_seeds} x 12 colour x shape clips of 8 frames (DDIM 20, "
          f"guidance 5, the run's prior); mean ± std over {args.seeds} seeds; {time.perf_counter() - start:.0f} s "
          f"in all. Toy FD of 64 more real clips against the 64 real reference clips: {real_fd:.2f}.\n")
    print(f"| training | steps | moves {args.motion}, seen shapes | moves {args.motion}, held-out shape | "
          "jitter (lower is better) | "
          "identity | toy FD (lower is better) |")
    print("|---|---|---|---|---|---|---|")
    for key, by_stop in rows.items():
        for stop, r in by_stop.items():
            print(f"| {key} | {stop} | " + " | ".join(mean_std(r[c]) for c in COLUMNS) + " |")


if __name__ == "__main__":
    main_cli()
