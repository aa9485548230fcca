"""`ldm-video eval-vae`: reconstruction quality of a video VAE next to the 2D SD VAE on the same clips.

Each clip is encoded (posterior mean) and decoded by both VAEs; reported per VAE: PSNR and SSIM
(Wang et al. 2004) against the input, the flicker of the reconstruction (SPEC §7: mean |x_{t+1} - x_t|)
next to the input's, and the flicker error (mean |Δrecon - Δinput|, what the temporal loss trains).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ldm_video.device import default_device
from ldm_video.errors import LdmVideoError
from ldm_video.vae.checkpoint import is_video_vae_folder, read_config
from ldm_video.vae.interface import VideoVAE
from ldm_video.vae.loading import load_video_vae, video_vae_folder
from ldm_video.vae.losses import temporal_loss
from ldm_video.vae.metrics import flicker, psnr, ssim, to_unit


@dataclass(frozen=True)
class VAEScores:
    """Mean scores of one VAE over the clips."""

    name: str  # what was evaluated
    kind: str  # "2d", "temporal-decoder" or "causal3d"
    psnr: float  # dB, higher is better
    ssim: float  # in [-1, 1], higher is better
    flicker: float  # mean |x_{t+1} - x_t| of the reconstruction, on [0, 1] values
    flicker_input: float  # the same for the input clips (what a faithful VAE reproduces)
    flicker_error: float  # mean |Δrecon - Δinput| on [0, 1] values, lower is better
    clips: int  # clips scored


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vae", required=True, help="video VAE folder (from train-vae) or a base model")
    parser.add_argument("--data", required=True, help="folder of videos to reconstruct")
    parser.add_argument("--base", default=None,
                        help="base whose 2D VAE is the reference: folder, hub id or single file (default: the base recorded "
                             "in --vae, a train-vae run folder or its vae/; else stabilityai/stable-diffusion-2-1-base)")
    parser.add_argument("--frames", type=int, default=9, help="frames per clip (4f+1 for a causal VAE)")
    parser.add_argument("--resolution", default="256", help="clip size: N or HxW (multiples of 8)")
    parser.add_argument("--frame-stride", type=int, default=1, help="take every n-th frame of a file")
    parser.add_argument("--clips", type=int, default=8, help="clips to score (one per video, in path order)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--json", default=None, help="also write the scores to this JSON file")


def score(vae: VideoVAE, clips: list[torch.Tensor], name: str) -> VAEScores:
    """Mean PSNR / SSIM / flicker of `vae`'s reconstructions of `clips` (each (1, 3, F, H, W))."""
    sums = {"psnr": 0.0, "ssim": 0.0, "flicker": 0.0, "flicker_input": 0.0, "flicker_error": 0.0}
    for clip in tqdm(clips, desc=f"eval-vae {name}", unit="clip", leave=False):  # step: one clip
        clip = clip.to(vae.device, vae.dtype)
        with torch.no_grad():
            recon = vae.decode(vae.encode(clip)).clamp(-1, 1).float()  # (1, 3, F, H, W)
        clip = clip.float()
        sums["psnr"] += psnr(recon, clip)
        sums["ssim"] += ssim(recon, clip)
        sums["flicker"] += flicker(recon)
        sums["flicker_input"] += flicker(clip)
        sums["flicker_error"] += float(temporal_loss(to_unit(recon), to_unit(clip)))
    n = max(1, len(clips))
    return VAEScores(name=name, kind=vae.kind, clips=len(clips), **{k: v / n for k, v in sums.items()})


def load_clips(data: str, frames: int, resolution: str, frame_stride: int, count: int) -> list[torch.Tensor]:
    """Up to `count` center-cropped clips, the first of each video in path order (deterministic)."""
    from ldm_video.train.data import DataConfig, VideoFolderDataset

    dataset = VideoFolderDataset(DataConfig(root=data, num_frames=frames, resolution=resolution,
                                            frame_stride=frame_stride, crop="center", images="off"))
    return [dataset[(i, 0)]["pixel_values"][None] for i in range(min(count, len(dataset)))]


def evaluate(vae_path: str, data: str, base: str | None = None, frames: int = 9, resolution: str = "256",
             frame_stride: int = 1, clips: int = 8, device: str = "cpu") -> list[VAEScores]:
    """Scores of the 2D SD VAE and of `vae_path` on the same clips (the 2D one first)."""
    if base is None:
        folder = video_vae_folder(vae_path)  # a train-vae run folder records its base in vae/
        base = read_config(folder).get("base") if is_video_vae_folder(folder) else vae_path
        if not base:  # the one rule for a missing --base (ldm_video.base)
            from ldm_video.base import DEFAULT_BASE

            base = DEFAULT_BASE
    vae = load_video_vae(vae_path, base=base, device=device)
    vae.check_num_frames(frames, what="--frames")
    reference = load_video_vae(base, device=device)
    batch = load_clips(data, frames, resolution, frame_stride, clips)
    results = [score(reference, batch, f"2d SD VAE ({base})")]
    if vae.kind != "2d":
        results.append(score(vae, batch, str(vae_path)))
    return results


def format_table(results: list[VAEScores]) -> str:
    head = f"{'VAE':<18} {'PSNR dB':>8} {'SSIM':>7} {'flicker':>8} {'input':>8} {'flick err':>9}  clips"
    rows = [f"{r.kind:<18} {r.psnr:>8.2f} {r.ssim:>7.4f} {r.flicker:>8.4f} {r.flicker_input:>8.4f} "
            f"{r.flicker_error:>9.4f}  {r.clips}" for r in results]
    return "\n".join([head] + rows)


def run(args: argparse.Namespace) -> int:
    if args.clips < 1:
        raise LdmVideoError(f"--clips must be >= 1, got {args.clips}")
    if args.json:  # before the scoring, not after it
        from ldm_video.files import check_writable

        check_writable(args.json, "JSON scores")
    results = evaluate(args.vae, args.data, args.base, args.frames, args.resolution, args.frame_stride,
                       args.clips, args.device or default_device())
    print(format_table(results))
    if args.json:
        path = Path(args.json)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps([asdict(r) for r in results], indent=2))
        os.replace(tmp, path)
    return 0
