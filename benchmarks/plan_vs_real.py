"""`ldm-video plan` against reality: estimated peak vs `torch.cuda.max_memory_allocated` of real training steps.

Needs a CUDA GPU. Writes a random-weight SD 2.1-shaped pipeline folder (real sizes, ~5 GB on disk; nothing is
downloaded) and a folder of synthetic clips, then for each preset runs `ldm_video.train.trainer.train` for a
few steps with the preset's settings and compares the peak it allocated with `estimate_memory` of the same
config. Target: within 10%.

    python benchmarks/plan_vs_real.py --preset sd21-base-16x256 sd21-base-16x512 sd21-768v-16x256
    python benchmarks/plan_vs_real.py --tiny     # CPU dry run of the same code path on the tiny test model
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> None:
    from ldm_video.testing import write_random_sd21, write_tiny_sd
    from ldm_video.train.config import TrainConfig
    from ldm_video.train.plan import estimate_memory
    from ldm_video.train.settings import load_yaml
    from ldm_video.train.synthetic import write_test_video
    from ldm_video.train.trainer import train

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", nargs="*", default=["sd21-base-16x256", "sd21-base-16x512", "sd21-768v-16x256"])
    parser.add_argument("--steps", type=int, default=3, help="training steps per preset")
    parser.add_argument("--workdir", default="/tmp/ldm-video-plan-vs-real")
    parser.add_argument("--tiny", action="store_true", help="CPU dry run on the tiny test model (no comparison)")
    parser.add_argument("--optimizer", default=None, choices=("adamw", "adamw8bit"),
                        help="instead of the preset's (adamw8bit): adamw where bitsandbytes is not installed")
    parser.add_argument("--out", default=None, help="append JSON lines here")
    args = parser.parse_args()
    work = Path(args.workdir)
    data = work / "clips"
    if not data.exists():
        for i in range(4):
            write_test_video(data / f"clip{i}.mp4", num_frames=40, height=320, width=384, seed=i)
            (data / f"clip{i}.txt").write_text(f"synthetic clip {i}")
    if not args.tiny and not torch.cuda.is_available():
        raise SystemExit("plan_vs_real needs a CUDA GPU (or --tiny for a CPU dry run)")
    for name in args.preset:  # step: one preset
        values = load_yaml(name, TrainConfig)
        if args.optimizer:
            values["optimizer"] = args.optimizer
        prediction = "v_prediction" if values["base"].endswith("stable-diffusion-2-1") else "epsilon"
        if args.tiny:
            base = write_tiny_sd(work / f"tiny-{prediction}", prediction) if not (
                work / f"tiny-{prediction}" / "model_index.json").exists() else work / f"tiny-{prediction}"
            values.update(resolution="32", mixed_precision="no", optimizer="adamw")
        else:
            base = write_random_sd21(work / f"sd21-{prediction}", prediction)
        out = work / f"run-{name}"
        config = TrainConfig.from_flat({**values, "base": str(base), "data": str(data), "output_dir": str(out),
                                "max_steps": args.steps, "checkpoint_every": 10_000, "validate_every": 0,
                                "validation_prompt": ()})
        plan = estimate_memory(config)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        # the cache is made before training (VAE on the GPU); remove it so every run measures the same work
        cache = out / "latent-cache"
        if cache.exists():
            import shutil

            shutil.rmtree(cache)
        train(config, progress=False)
        real = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
        row = {"preset": name, "optimizer": values["optimizer"], "estimate_bytes": plan.total, "real_bytes": real,
               "ratio": (plan.total / real) if real else None, "device": torch.cuda.get_device_name()
               if torch.cuda.is_available() else "cpu (dry run)"}
        print(f"{name:20s} {values['optimizer']:9s} plan {plan.total / 1e9:6.2f} GB   real "
              f"{'n/a' if real is None else f'{real / 1e9:6.2f} GB'}   "
              f"{'' if real is None else f'plan/real {plan.total / real:.3f}'}", flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
