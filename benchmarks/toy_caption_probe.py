"""Does a motion module read the motion word of the caption? A loss probe on the toy world.

AnimateDiff-style temporal layers have no text input: the caption's motion word can only reach them through
the frozen image model's features (and spatial LoRA, when trained). Generating videos and scoring their
direction is slow and noisy; this probe asks the question of the denoising loss directly. On held-out toy
clips with a straight motion, it compares the epsilon loss of the video U-Net given the true caption with the
loss given the same caption with the opposite motion word ("moving left" <-> "moving right", "up" <-> "down"),
at the same noisy latents. A model that uses the motion word denoises better with the true one (gap > 0, and
the true caption wins on most clips); a model that ignores it scores the same either way. The image model
alone (fresh temporal layers) is the reference for how much the temporal layers learned at all.

    python benchmarks/toy_caption_probe.py --motion RUN_DIR [RUN_DIR ...] [--base BASE]

Noise follows the prior each run was trained with (its train_config.yaml): a run is probed on its objective.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from ldm_video.base import load_base
from ldm_video.infer.model import load_video_model
from ldm_video.noise import video_noise
from ldm_video.text import encode_prompts
from ldm_video.toy import TOY_BASE
from ldm_video.toy.world import DIRECTIONS, caption_for, sample
from ldm_video.train.config import TrainConfig
from ldm_video.train.encode import encode_video
from ldm_video.train.settings import CONFIG_NAME, load_yaml

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def held_out_clips(count: int, frames: int, seed: int) -> list:
    """`count` toy clips with a straight motion, from sample seeds >= 10^7 (`write_folder --seed 0`, as the
    demo writes, uses 0 .. count-1)."""
    clips, i = [], 0
    while len(clips) < count:
        item = sample(10_000_000 + seed * 100_003 + i, frames)
        i += 1
        if item.spec.motion in DIRECTIONS:
            clips.append(item)
    return clips


def video_model(base_dir: str, run: str | None):
    """A fresh copy of the base U-Net with the run's temporal layers (None: fresh ones, the image model)."""
    unet_only = load_base(base_dir, components=("unet",))  # inflating edits the U-Net it is given
    return load_video_model(unet_only, run, None, 1.0)


def swapped(spec) -> str:
    """The clip's caption with the opposite motion word."""
    return caption_for(spec.colour, spec.shape, OPPOSITE[spec.motion])


@torch.no_grad()
def probe(model, scheduler, latents, text_true, text_wrong, timesteps, prior: str, alpha: float,
          seed: int, batch: int = 16) -> list[dict]:
    """Per timestep: mean epsilon loss with the true / swapped caption, their relative gap, the share of
    clips where the true caption wins. latents (n, 4, f, h, w); text_* (n, seq, dim)."""
    rows = []
    generator = torch.Generator().manual_seed(seed)
    for t in timesteps:
        noise = video_noise(tuple(latents.shape), prior, alpha, generator=generator)  # (n, 4, f, h, w)
        tv = torch.full((latents.shape[0],), t, dtype=torch.long)
        noisy = scheduler.add_noise(latents, noise, tv)
        losses = {"true": [], "wrong": []}
        for i in range(0, latents.shape[0], batch):
            part = slice(i, i + batch)
            for key, text in (("true", text_true), ("wrong", text_wrong)):
                eps = model(noisy[part], tv[part], text[part]).sample
                losses[key].append(((eps - noise[part]) ** 2).mean(dim=(1, 2, 3, 4)))  # (b,)
        true, wrong = torch.cat(losses["true"]), torch.cat(losses["wrong"])  # (n,)
        rows.append({"t": t, "true": true.mean().item(), "wrong": wrong.mean().item(),
                     "gap_pct": 100 * ((wrong - true) / true).mean().item(),
                     "true_wins": (true < wrong).float().mean().item()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--motion", nargs="+", required=True,
                        help="trained temporal-layer folders (ldm-video train output)")
    parser.add_argument("--base", default=str(TOY_BASE), help="toy base the runs were trained on")
    parser.add_argument("--clips", type=int, default=96, help="held-out clips with a straight motion")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--timesteps", default="200,400,600,800,950")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    for run in args.motion:
        if not (Path(run) / CONFIG_NAME).is_file():
            parser.error(f"{run}: no {CONFIG_NAME} there; --motion takes the output folder of `ldm-video train`")
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    base = load_base(args.base, components=("vae", "tokenizer", "text_encoder", "scheduler"))
    scheduler = base.scheduler  # the base's training schedule (DDPM), which add_noise follows
    clips = held_out_clips(args.clips, args.frames, args.seed)
    frames = torch.stack([torch.from_numpy(c.frames) for c in clips])  # uint8 (n, f, h, w, 3)
    pixels = frames.permute(0, 4, 1, 2, 3).float() / 127.5 - 1  # (n, 3, f, h, w) in [-1, 1]
    latents = encode_video(base.vae, pixels, torch.Generator().manual_seed(args.seed))
    text_true = encode_prompts(base.tokenizer, base.text_encoder, [c.caption for c in clips])
    text_wrong = encode_prompts(base.tokenizer, base.text_encoder, [swapped(c.spec) for c in clips])
    timesteps = [int(t) for t in args.timesteps.split(",")]

    print(f"Held-out clips: {len(clips)} x {args.frames} frames (straight motions). Loss: epsilon MSE x 1e3 "
          "with the true caption; gap: loss with the opposite motion word over loss with the true one, "
          "minus 1.\n")
    header = " | ".join(f"t={t}: loss / gap % / true wins" for t in timesteps)
    print(f"| model | prior | {header} |")
    print("|---|---|" + "---|" * len(timesteps))
    runs: list[tuple[str, str | None, str, float]] = []
    for run in args.motion:
        cfg = load_yaml(Path(run) / CONFIG_NAME, TrainConfig)  # the run's training settings
        prior, alpha = cfg.get("noise_prior", "iid"), float(cfg.get("noise_alpha", 0.0))
        if ("image model (fresh temporal layers)", None, prior, alpha) not in runs:
            runs.append(("image model (fresh temporal layers)", None, prior, alpha))
        runs.append((run, run, prior, alpha))
    for name, run, prior, alpha in runs:
        model = video_model(args.base, run)
        rows = probe(model, scheduler, latents, text_true, text_wrong, timesteps, prior, alpha, args.seed)
        cells = [f"{r['true'] * 1e3:.2f} / {r['gap_pct']:+.2f} / {r['true_wins']:.2f}" for r in rows]
        print(f"| {name} | {prior} {alpha:g} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s on {platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
