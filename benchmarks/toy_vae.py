"""Do the video VAEs earn their place? The temporal decoder (VidRD) and the causal 3D VAE fine-tuned from the
shipped toy base's VAE on toy videos, scored on held-out toy videos next to the 2D VAE (issue 17).

Each kind is trained with `ldm-video train-vae` at its defaults (or `--steps`), from the toy base, on toy videos
of every colour, shape and motion; held-out videos (other seeds) are encoded and decoded by each VAE and scored:
PSNR / SSIM, flicker error (mean |Δrecon - Δinput|), and the toy world's ground truth of the decoded video —
object present, colour and shape right, centroid error against the true track (all frames; for the causal VAE
also key frames, 0 mod 4, against the others, which 4x temporal compression has to interpolate), and step
jitter (mean |recon step length - true step length|).

    python benchmarks/toy_vae.py --work /tmp/toy-vae --videos 64 --heldout 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

KINDS = ("temporal-decoder", "causal3d")


def decoded(vae, frames: np.ndarray) -> np.ndarray:
    """uint8 (f, H, W, 3) -> the VAE's reconstruction (posterior mean), uint8 (f, H, W, 3)."""
    from ldm_video.vae.interface import to_uint8_frames

    x = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1  # (1, 3, f, H, W) in [-1, 1]
    with torch.no_grad():
        recon = vae(x.to(vae.device, vae.dtype), sample=False)[0]
    return to_uint8_frames(recon)[0].numpy()


def scores(recon: np.ndarray, truth, kind: str) -> dict:
    """Reconstruction and toy ground-truth scores of one decoded video against its source sample."""
    from ldm_video.toy.metrics import analyse_video, centroid_track, score_video
    from ldm_video.toy.world import centres
    from ldm_video.vae.metrics import psnr, ssim

    def tensor(v: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(v).permute(3, 0, 1, 2)[None].float() / 127.5 - 1  # (1, 3, f, H, W)

    a, b = tensor(recon), tensor(truth.frames)
    dr, di = np.diff(recon.astype(np.float32) / 255, axis=0), np.diff(truth.frames.astype(np.float32) / 255, axis=0)
    toy = score_video(recon, truth.caption)
    track = centroid_track(analyse_video(recon))  # (f, 2), NaN where absent
    true = centres(truth.spec)  # (f, 2)
    err = np.linalg.norm(track - true, axis=1)  # (f,)
    key = np.arange(len(err)) % 4 == 0
    steps, true_steps = np.linalg.norm(np.diff(track, axis=0), axis=1), np.linalg.norm(np.diff(true, axis=0), axis=1)
    return {"psnr": psnr(a, b), "ssim": ssim(a, b), "flicker_error": float(np.abs(dr - di).mean()),
            "present": toy.present, "colour": toy.colour, "shape": toy.shape,
            "centroid_error": float(np.nanmean(err)), "centroid_error_key": float(np.nanmean(err[key])),
            "centroid_error_other": float(np.nanmean(err[~key])),
            "step_jitter": float(np.nanmean(np.abs(steps - true_steps)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="/tmp/toy-vae", help="scratch folder (training data, runs)")
    parser.add_argument("--videos", type=int, default=64, help="toy training videos")
    parser.add_argument("--heldout", type=int, default=16, help="held-out toy videos scored")
    parser.add_argument("--frames", type=int, default=9, help="frames per clip (4f+1 for the causal VAE)")
    parser.add_argument("--steps", type=int, default=None, help="train-vae steps (default: train-vae's default)")
    parser.add_argument("--lr", type=float, default=None, help="train-vae learning rate (default: its default)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ldm_video.cli import main as cli
    from ldm_video.toy import TOY_BASE
    from ldm_video.toy.world import sample, write_folder
    from ldm_video.vae import load_video_vae

    work = Path(args.work)
    data = work / "train"
    if not data.exists():
        write_folder(data, args.videos, num_frames=args.frames, seed=args.seed, progress=False)
    heldout = [sample(100_000 + i, args.frames) for i in range(args.heldout)]
    seconds = {}
    for kind in args.kinds:
        out = work / kind
        if not (out / "vae").exists():
            flags = ["train-vae", "--kind", kind, "--base", str(TOY_BASE), "--data", str(data), "--output-dir",
                     str(out), "--frames", str(args.frames), "--resolution", "64", "--seed", str(args.seed),
                     "--no-progress", "--overwrite"]
            flags += ["--max-steps", str(args.steps)] if args.steps else []
            flags += ["--lr", str(args.lr)] if args.lr else []
            t0 = time.perf_counter()
            assert cli(flags) == 0, kind
            seconds[kind] = round(time.perf_counter() - t0)
    rows = {"input (no VAE)": {k: float(np.mean([scores(s.frames, s, "input")[k] for s in heldout]))
                               for k in scores(heldout[0].frames, heldout[0], "input")}}  # the metrics' own floor
    for name, source in (("2d", str(TOY_BASE)), *((k, str(work / k)) for k in args.kinds)):
        vae = load_video_vae(source, base=str(TOY_BASE))
        per_clip = [scores(decoded(vae, s.frames), s, name) for s in heldout]
        rows[name] = {k: float(np.mean([c[k] for c in per_clip])) for k in per_clip[0]}
    print(f"\nMachine: {platform.machine()} CPU ({os.cpu_count()} cores), torch {torch.__version__}, 1 thread; "
          f"{args.videos} toy training videos of {args.frames} frames at 64 px, seed {args.seed}; {args.heldout} "
          f"held-out videos (seeds 100000-{100000 + args.heldout - 1}); train seconds {seconds or 'reused'}\n")
    cols = ("psnr", "ssim", "flicker_error", "present", "colour", "shape", "centroid_error", "centroid_error_key",
            "centroid_error_other", "step_jitter")
    print("| VAE | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.4f}" if c == "flicker_error" else f"{row[c]:.2f}"
                                           for c in cols) + " |")
    (work / "scores.json").write_text(json.dumps({"rows": rows, "train_seconds": seconds}, indent=1))


if __name__ == "__main__":
    main()
