"""PYoCo's Table 5 / Fig. 7 and VidRD's long-video comparison in miniature, on the toy world.

Temporal fine-tuning of the shipped toy image model with iid, mixed and progressive noise priors (several
alphas), each over several seeds, against training the same video U-Net from scratch (random spatial weights,
every weight trained, same data, steps and prior as the demo's). Every run generates the same 24 captions as
8-frame clips, scored with the toy world's ground-truth metrics and a Frechet distance to 64 held-out real toy
clips. Then, for long videos, VidRD (FNR + PNS + DSG) against independent clips.

    python benchmarks/toy_ablation.py --seeds 3 --steps 1500 > ablation.md

All fine-tuning runs read one latent cache made by `ldm-video prepare` (so they see identical clips) and train
through the product trainer; the from-scratch baseline is a short loop over the same cache and the same
objective functions (the trainer only trains temporal layers and LoRA). Prints markdown tables (mean +- std
over seeds). PYoCo's UCF-101 numbers for comparison are in SPEC §3.
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

import numpy as np
import torch

from ldm_video.cli import main
from ldm_video.infer.video_io import read_video
from ldm_video.toy import TOY_BASE
from ldm_video.toy.metrics import score_video, toy_frechet_distance
from ldm_video.toy.world import all_captions, write_folder
from ldm_video.toy.world import sample as toy_sample
from ldm_video.train.config import TrainConfig
from ldm_video.train.trainer import train

PRIORS = (("iid", 0.0), ("mixed", 1.0), ("mixed", 4.0), ("progressive", 0.5), ("progressive", 2.0),
          ("progressive", 4.0))
METRICS = ("direction", "identity", "colour", "shape", "jitter")
LONG_PROMPTS = ("a red circle bouncing", "a blue square moving down")


def prompts(count: int) -> list[str]:
    """`count` toy captions, a fixed draw from all 60."""
    rng = np.random.default_rng(7)
    return [str(c) for c in rng.choice(all_captions(), size=count, replace=False)]


def generate(base: str, motion: Path, prompt: str, out: Path, frames: int, seed: int, extend: str,
             prior: str, alpha: float, steps: int) -> dict:
    args = ["generate", "--base", base, "--motion", str(motion), "--prompt", prompt, "--frames", str(frames),
            "--clip-frames", "8", "--steps", str(steps), "--guidance", "5", "--height", "64", "--width", "64",
            "--seed", str(seed), "--noise-prior", prior, "--noise-alpha", str(alpha), "--extend", extend,
            "--out", str(out), "--quiet"]
    if extend == "vidrd":
        args += ["--overlap", "4"]
    assert main(args) == 0
    video = read_video(out)
    scores = score_video(video, prompt, clip_frames=8, seam_drop=1 if extend == "vidrd" else 0).as_dict()
    # jitter: how far the object's step departs from the clip's mean step (0 for constant-velocity motion)
    scores["jitter"] = 1.0 - scores["speed_consistency"]
    return {**scores, "video": video}


def train_from_scratch(base: str, cache: Path, out: Path, steps: int, prior: str, alpha: float, seed: int,
                       lr: float) -> Path:
    """The video U-Net of the toy base's shape with random spatial weights, all weights trained on the cache.

    Writes a toy-base copy whose unet/ holds the trained spatial weights plus the temporal layers in
    `out / "motion"`, so `ldm-video generate --base OUT --motion OUT/motion` samples it; returns `out`.
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
    model.train()
    for _ in range(steps):
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
    model.eval()
    shutil.copytree(base, out)
    shutil.rmtree(out / "unet")
    model.unet.save_pretrained(out / "unet")
    save_temporal(model, out / "motion", {"frames": 8, "noise_prior": prior, "noise_alpha": alpha})
    return out


def mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def score_run(base: str, motion: Path, out: Path, captions: list[str], seed: int, prior: str, alpha: float,
              sample_steps: int, real: list[np.ndarray]) -> dict[str, float]:
    """Generate every caption as one 8-frame clip; mean toy metrics and the toy FD against `real`."""
    generated, scores = [], []
    for i, prompt in enumerate(captions):
        s = generate(base, motion, prompt, out / f"v{i}.mp4", 8, seed * 100 + i, "independent", prior, alpha,
                     sample_steps)
        generated.append(s.pop("video"))
        scores.append(s)
    row = {m: statistics.mean(s[m] for s in scores) for m in METRICS}
    row["fd"] = toy_frechet_distance(real, generated)
    return row


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default=str(TOY_BASE), help="toy base folder (default: the shipped one)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500, help="fine-tuning steps per run (batch 4)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--videos", type=int, default=480, help="toy training clips (8 frames each)")
    parser.add_argument("--prompts", type=int, default=24, help="generated clips per run (for the metrics and FD)")
    parser.add_argument("--sample-steps", type=int, default=20)
    parser.add_argument("--scratch-prior", default="progressive", help="prior of the from-scratch baseline")
    parser.add_argument("--scratch-alpha", type=float, default=0.5)
    parser.add_argument("--long-prior", default="progressive", help="prior of the model the long-video rows use")
    parser.add_argument("--long-alpha", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="toy-ablation-"))
    write_folder(work / "data", args.videos, num_frames=8, seed=1234, progress=False)
    assert main(["prepare", "--base", args.base, "--data", str(work / "data"), "--output", str(work / "cache"),
                 "--frames", "8", "--resolution", "64", "--images", "off"]) == 0
    real = [toy_sample(10_000 + i, 8).frames for i in range(64)]  # held-out real toy clips
    captions = prompts(args.prompts)

    rows: dict[str, dict[str, list]] = {}
    for prior, alpha in PRIORS:
        key = f"{prior} (alpha {alpha:g})" if prior != "iid" else "iid"
        rows[key] = {m: [] for m in (*METRICS, "fd")}
        for seed in range(args.seeds):
            out = work / f"{prior}-{alpha}-{seed}"
            train(TrainConfig(base=args.base, cache=str(work / "cache"), output_dir=str(out), frames=8,
                              resolution="64", images="off", batch_size=4, lr=args.lr, max_steps=args.steps, noise_prior=prior, noise_alpha=alpha,
                              temporal_layers="attn", attention_heads=4, checkpoint_every=args.steps, seed=seed),
                  progress=False)
            for m, v in score_run(args.base, out, out, captions, seed, prior, alpha, args.sample_steps,
                                  real).items():
                rows[key][m].append(v)
            print(f"# done {key} seed {seed} ({time.perf_counter() - start:.0f} s)", flush=True)
    key = f"from scratch, {args.scratch_prior} (alpha {args.scratch_alpha:g})"
    rows[key] = {m: [] for m in (*METRICS, "fd")}
    for seed in range(args.seeds):
        out = train_from_scratch(args.base, work / "cache", work / f"scratch-{seed}", args.steps, args.scratch_prior,
                                 args.scratch_alpha, seed, args.lr)
        for m, v in score_run(str(out), out / "motion", out, captions, seed, args.scratch_prior, args.scratch_alpha,
                              args.sample_steps, real).items():
            rows[key][m].append(v)
        print(f"# done {key} seed {seed} ({time.perf_counter() - start:.0f} s)", flush=True)
    untrained = [toy_sample(10_000 + i, 8).frames for i in range(64, 128)]
    real_fd = toy_frechet_distance(real, untrained)

    print(f"\n## Toy ablation: noise priors (benchmarks/toy_ablation.py --seeds {args.seeds} --steps {args.steps})\n")
    print(f"Machine: {platform.machine()} CPU, torch {torch.__version__}, {args.threads} thread(s); "
          f"{args.videos} toy training clips of 8 frames, batch 4, lr {args.lr:g}; {args.prompts} captions x 8 "
          f"frames generated per run; mean ± std over {args.seeds} seeds. Toy FD of 64 more real clips against "
          f"the 64 real reference clips: {real_fd:.2f}.\n")
    print("| training | moves as captioned | identity | colour | shape | jitter (lower is better) | "
          "toy FD (lower is better) |")
    print("|---|---|---|---|---|---|---|")
    for key, r in rows.items():
        print(f"| {key} | " + " | ".join(mean_std(r[m]) for m in (*METRICS, "fd")) + " |")

    # long videos: VidRD vs independent clips on one of the fine-tuned models, every seed's
    long_rows: dict[str, dict[str, list]] = {}
    for extend in ("vidrd", "independent"):
        acc: dict[str, list] = {"seam_jump": [], "direction": [], "identity": []}
        for seed in range(args.seeds):
            motion = work / f"{args.long_prior}-{args.long_alpha}-{seed}"
            for i, prompt in enumerate(LONG_PROMPTS):
                s = generate(args.base, motion, prompt, work / f"long-{extend}-{seed}-{i}.mp4", 64, seed, extend,
                             args.long_prior, args.long_alpha, args.sample_steps)
                for m, values in acc.items():
                    values.append(s[m])
        long_rows[extend] = acc
    print(f"\n### Long videos (64 frames, clips of 8): VidRD vs independent clips, {args.long_prior} alpha "
          f"{args.long_alpha:g} models of every seed, prompts {', '.join(LONG_PROMPTS)}\n")
    print("| extension | seam jump ratio (1 = seamless) | moves as captioned | identity |")
    print("|---|---|---|---|")
    for extend, acc in long_rows.items():
        print(f"| {extend} | {mean_std(acc['seam_jump'])} | {mean_std(acc['direction'])} | "
              f"{mean_std(acc['identity'])} |")
    print(f"\nTotal time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main_cli()
