"""Reconstruction of the two video VAEs against the 2D SD VAE on a small synthetic clip set (tiny models).

Writes a tiny random SD 2.1-shaped base, synthetic training clips and held-out clips (moving squares on
gradients, `ldm_video.train.synthetic`), trains each kind with `ldm-video train-vae`, then scores both with
`ldm-video eval-vae` on the held-out clips. Tiny random models: the numbers show the tooling and the
direction of the effect, not the quality of a fine-tuned SD 2.1 VAE.

    python benchmarks/vae_recon.py --work /tmp/vae-bench --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="/tmp/vae-bench", help="scratch folder")
    parser.add_argument("--steps", type=int, default=200, help="train-vae steps per kind")
    parser.add_argument("--frames", type=int, default=9, help="frames per clip (4f+1)")
    parser.add_argument("--resolution", default="32", help="clip size")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ldm_video.cli import main as cli
    from ldm_video.testing import write_tiny_sd
    from ldm_video.train.synthetic import write_test_video

    work = Path(args.work)
    base = work / "base"
    if not base.exists():
        write_tiny_sd(base)
    for split, seeds in (("train", range(8)), ("heldout", range(100, 104))):
        for s in seeds:
            path = work / split / f"clip{s}.mp4"
            if not path.exists():
                write_test_video(path, num_frames=24, height=48, width=48, seed=s)
    results = {}
    for kind, lr in (("temporal-decoder", "1e-3"), ("causal3d", "3e-4")):
        out = work / f"run-{kind}"
        t0 = time.time()
        flags = ["--kind", kind, "--base", str(base), "--data", str(work / "train"), "--output-dir", str(out),
                 "--frames", str(args.frames), "--resolution", args.resolution, "--max-steps", str(args.steps),
                 "--lr", lr, "--checkpoint-every", str(args.steps)]
        if (out / "checkpoints").exists():
            flags.append("--resume")
        assert cli(["train-vae", *flags]) == 0
        train_s = time.time() - t0
        scores = work / f"scores-{kind}.json"
        assert cli(["eval-vae", "--vae", str(out / "vae"), "--data", str(work / "heldout"), "--frames",
                    str(args.frames), "--resolution", args.resolution, "--clips", "4", "--json", str(scores)]) == 0
        results[kind] = {"train_seconds": round(train_s, 1), "scores": json.loads(scores.read_text())}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
