"""Do the video VAEs earn their place? The temporal decoder (VidRD) and the causal 3D VAE fine-tuned from the
shipped toy base's VAE on toy videos, scored on held-out toy videos next to the 2D VAE (issue 17).

Each kind is trained with `ldm-video train-vae` at its defaults (or `--steps`), from the toy base, on toy videos
of every colour, shape and motion; held-out videos (other seeds) are encoded and decoded by each VAE and scored:
PSNR / SSIM, flicker error (mean |Δrecon - Δinput|), and the toy world's ground truth of the decoded video —
object present, colour and shape right, centroid error against the true track (all frames; for the causal VAE
also key frames, 0 mod 4, against the others, which 4x temporal compression has to interpolate), and step
jitter (mean |recon step length - true step length|).

    python benchmarks/toy_vae.py --work /tmp/toy-vae --videos 64 --heldout 16
    python benchmarks/toy_vae.py --work /tmp/toy-vae --motion DEMO/motion   # also: the demo model's long videos

With `--motion` (a tuned toy motion module, e.g. `ldm-video demo`'s), long videos are generated with
`ldm-video generate` (the demo's VidRD settings) and decoded from the same latents by the 2D VAE and by the
temporal decoder (`--vae`), then scored with the toy ground truth: does the temporal decoder lower jitter
without smearing the learnt motion? (The causal VAE has its own latent space: the U-Net would have to be
trained on it, issue 17 item 3.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import time
from pathlib import Path

import numpy as np
import torch

KINDS = ("temporal-decoder", "causal3d")
INFLATED = "causal3d-inflated"  # the causal VAE as inflated from the 2D VAE, untrained (scored next to causal3d)


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
    parser.add_argument("--train-args", default="", metavar="FLAGS",
                        help="more train-vae flags, quoted, e.g. '--lr-warmup-steps 100 --lr-scheduler cosine'")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--motion", default=None, help="tuned toy motion module: also decode its long videos")
    parser.add_argument("--long-frames", type=int, default=24, help="frames of each long video (--motion)")
    parser.add_argument("--unet-steps", type=int, default=0,
                        help="also train the temporal layers with the demo's one-motion recipe for this many steps on "
                             "9-frame clips, once on the 2D VAE's latents and once on the causal VAE's (3 latent "
                             "frames), and score their motion and seconds per output frame (0 = skip)")
    parser.add_argument("--frame-error", action="store_true",
                        help="also measure the frozen image U-Net's denoising error per latent frame on the 2D VAE's "
                             "and the causal VAE's latents of the held-out videos (does the image model read causal "
                             "latents of non-key frames?)")
    args = parser.parse_args()
    if args.frame_error and "causal3d" not in args.kinds:
        parser.error("--frame-error compares the causal VAE's latents: keep causal3d in --kinds")
    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ldm_video.cli import main as cli
    from ldm_video.toy import TOY_BASE
    from ldm_video.toy.world import sample, write_folder
    from ldm_video.vae import load_video_vae
    from ldm_video.vae.causal3d import CausalVAE
    from ldm_video.vae.temporal_decoder import load_base_vae

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
            flags += shlex.split(args.train_args)
            t0 = time.perf_counter()
            assert cli(flags) == 0, kind
            seconds[kind] = round(time.perf_counter() - t0)
    kinds = list(args.kinds)
    if "causal3d" in kinds:  # the inflated VAE before any training: what the fine-tuning has to improve on
        kinds.insert(kinds.index("causal3d"), INFLATED)
        if not (work / INFLATED / "vae").exists():
            CausalVAE(load_base_vae(str(TOY_BASE)), base=str(TOY_BASE)).save(work / INFLATED / "vae")
    rows = {"input (no VAE)": {k: float(np.mean([scores(s.frames, s, "input")[k] for s in heldout]))
                               for k in scores(heldout[0].frames, heldout[0], "input")}}  # the metrics' own floor
    for name, source in (("2d", str(TOY_BASE)), *((k, str(work / k)) for k in kinds)):
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
    long_rows = long_videos(args, work) if args.motion else {}
    unet_rows = causal_unet(args, work) if args.unet_steps else {}
    frame_rows = latent_frame_error(work, heldout) if args.frame_error else {}
    (work / "scores.json").write_text(json.dumps({"rows": rows, "train_seconds": seconds, "long": long_rows,
                                                  "unet": unet_rows, "frame_error": frame_rows}, indent=1))


FRAME_TIMESTEPS = (50, 200, 400, 600, 800)


def latent_frame_error(work: Path, heldout: list, noise_seeds: int = 4) -> dict:
    """The frozen image U-Net's denoising error (the training loss, MSE against its target) per latent frame of the
    held-out videos, by timestep: on the 2D VAE's latents (every latent frame an image latent), and on the causal
    VAE's, split into latent frame 0 (pixel frame 0 encoded alone, like an image) and the later latent frames (each
    summarising 4 pixel frames, which the image model never saw). Also the latents' standard deviation."""
    from ldm_video.base import load_base
    from ldm_video.text import encode_prompts
    from ldm_video.toy import TOY_BASE
    from ldm_video.train.objective import noisy_latents, training_target
    from ldm_video.vae import load_video_vae

    base = load_base(str(TOY_BASE), ("unet", "text_encoder", "tokenizer", "scheduler"))
    groups: dict[str, dict[int | str, list[float]]] = {}
    for name, source in (("2d", str(TOY_BASE)), (INFLATED, str(work / INFLATED)), ("causal3d", str(work / "causal3d"))):
        vae = load_video_vae(source, base=str(TOY_BASE))
        keys = [name if name == "2d" else f"{name}, latent frame {'0' if f == 0 else '1+'}"
                for f in range(vae.latent_frames(heldout[0].frames.shape[0]))]
        for i, s in enumerate(heldout):
            x = torch.from_numpy(s.frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1  # (1, 3, F, H, W)
            with torch.no_grad():
                z = vae.encode(x)[0].transpose(0, 1)  # (f, 4, h, w), scaled
                text = encode_prompts(base.tokenizer, base.text_encoder, [s.caption]).expand(len(z), -1, -1)
                for t in FRAME_TIMESTEPS:
                    g = torch.Generator().manual_seed(i)
                    for _ in range(noise_seeds):
                        noise = torch.randn(z.shape, generator=g)  # iid per frame: the image model's own noise
                        steps = torch.full((len(z),), t)
                        pred = base.unet(noisy_latents(base.scheduler, z, noise, steps), steps, text).sample
                        target = training_target(base.prediction_type, base.scheduler, z, noise, steps)
                        err = (pred - target).pow(2).mean(dim=(1, 2, 3))  # (f,)
                        for key, e in zip(keys, err.tolist()):
                            groups.setdefault(key, {}).setdefault(t, []).append(e)
                for key, frame in zip(keys, z):
                    groups.setdefault(key, {}).setdefault("std", []).append(float(frame.std()))
    rows = {key: {str(k): float(np.mean(v)) for k, v in by.items()} for key, by in groups.items()}
    print(f"\nFrozen image U-Net's denoising MSE per latent frame ({len(heldout)} held-out videos x {noise_seeds} "
          "noise draws per timestep):\n")
    print("| latents | " + " | ".join(f"t={t}" for t in FRAME_TIMESTEPS) + " | mean | latent std |")
    print("|---|" + "---|" * (len(FRAME_TIMESTEPS) + 2))
    for key, r in rows.items():
        cells = [r[str(t)] for t in FRAME_TIMESTEPS]
        print(f"| {key} | " + " | ".join(f"{c:.4f}" for c in cells) + f" | {np.mean(cells):.4f} | {r['std']:.3f} |")
    return rows


def causal_unet(args, work: Path) -> dict:
    """The demo's one-motion recipe on 9-frame clips, trained on 2D-VAE latents (9 latent frames) and on causal-VAE
    latents (3), each scored on 9-frame clips of every colour x shape (seeds 0-1; triangles held out)."""
    from ldm_video.cli import main as cli
    from ldm_video.infer.video_io import read_video
    from ldm_video.toy import TOY_BASE
    from ldm_video.toy.metrics import score_video
    from ldm_video.toy.world import COLOURS, SHAPES, WorldConfig, caption_for, write_folder
    from ldm_video.train.config import TrainConfig
    from ldm_video.train.trainer import train

    data = work / "motion9"
    if not data.exists():
        write_folder(data, 480, num_frames=9, seed=args.seed, progress=False, config=WorldConfig(
            motions=("right",), shapes=("circle", "square"), min_speed=0.5, max_speed=1.0))
    rows = {}
    for name, vae, clip in (("2d latents (9 frames)", None, 9), ("causal latents (3 frames)", work / "causal3d", 3)):
        run = work / ("unet-" + name.split()[0])
        t0 = time.perf_counter()
        if not (run / "temporal_layers.safetensors").exists():
            train(TrainConfig.from_flat(base=str(TOY_BASE), data=str(data), output_dir=str(run), frames=9, resolution="64",
                              cache_latents=True, vae=str(vae) if vae else None, batch_size=4, lr=1e-3,
                              max_steps=args.unet_steps, noise_prior="progressive", noise_alpha=0.5,
                              temporal_layers="attn", attention_heads=4, images="off",
                              checkpoint_every=args.unet_steps, seed=args.seed, overwrite=True), progress=False)
        train_s = time.perf_counter() - t0
        held, seen, gen_s = [], [], 0.0
        for colour in COLOURS:
            for shape in SHAPES:
                for seed in (0, 1):
                    prompt = caption_for(colour, shape, "right")
                    out = work / "unet-clips" / f"{run.name}-{colour}-{shape}-{seed}.mp4"
                    flags = ["generate", "--base", str(TOY_BASE), "--motion", str(run), "--prompt", prompt,
                             "--frames", "9", "--clip-frames", str(clip), "--steps", "20", "--guidance", "5",
                             "--height", "64", "--width", "64", "--seed", str(100 + seed), "--noise-prior",
                             "progressive", "--noise-alpha", "0.5", "--out", str(out), "--no-progress"]
                    flags += ["--vae", str(vae)] if vae else []
                    t1 = time.perf_counter()
                    assert cli(flags) == 0, flags
                    gen_s += time.perf_counter() - t1
                    (held if shape == "triangle" else seen).append(score_video(read_video(out), prompt).direction)
        rows[name] = {"held_out": float(np.mean(held)), "seen": float(np.mean(seen)),
                      "all": float(np.mean(held + seen)), "train_s": round(train_s),
                      "seconds_per_output_frame": gen_s / (24 * 9)}
    print(f"\nOne-motion recipe on 9-frame clips, {args.unet_steps} steps (moves right; 24 clips per model, 8 held out):\n")
    print("| U-Net trained on | held out | seen | all | train s | generate s per output frame |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['held_out']:.2f} | {r['seen']:.2f} | {r['all']:.2f} | {r['train_s']} | "
              f"{r['seconds_per_output_frame']:.2f} |")
    return rows


def long_videos(args, work: Path) -> dict:
    """The demo model's long videos decoded by the 2D VAE and by the temporal decoder, scored (mean per decoder)."""
    from ldm_video.cli import main as cli
    from ldm_video.infer.video_io import read_video
    from ldm_video.toy import TOY_BASE
    from ldm_video.toy.metrics import score_video
    from ldm_video.toy.world import caption_for
    from ldm_video.vae.metrics import flicker

    prompts = [caption_for(c, s, "right") for c, s in (("red", "circle"), ("blue", "triangle"), ("green", "square"),
                                                         ("yellow", "triangle"))]
    decoders = {"2d": None, "temporal-decoder": str(work / "temporal-decoder")}
    per = {name: [] for name in decoders}
    for i, prompt in enumerate(prompts):
        for seed in (0, 1):
            for name, vae in decoders.items():
                out = work / "long" / f"{i}-{seed}-{name}.mp4"
                flags = ["generate", "--base", str(TOY_BASE), "--motion", args.motion, "--prompt", prompt,
                         "--frames", str(args.long_frames), "--clip-frames", "8", "--overlap", "4", "--steps", "20",
                         "--guidance", "5", "--height", "64", "--width", "64", "--seed", str(seed),
                         "--noise-prior", "progressive", "--noise-alpha", "0.5", "--reuse-order", "forward",
                         "--out", str(out), "--no-progress"] + (["--vae", vae] if vae else [])
                assert cli(flags) == 0, flags
                frames = read_video(out)
                toy = score_video(frames, prompt, clip_frames=8, seam_drop=4)
                video = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
                per[name].append({"direction": toy.direction, "speed_consistency": toy.speed_consistency,
                                  "mean_speed": toy.mean_speed, "shape": toy.shape, "identity": toy.identity,
                                  "flicker": flicker(video)})
    rows = {name: {k: float(np.mean([r[k] for r in runs])) for k in runs[0]} for name, runs in per.items()}
    print(f"\nLong videos of {args.motion} ({len(prompts)} prompts x seeds 0-1, {args.long_frames} frames, VidRD "
          "forward, clips of 8 / overlap 4), the same latents decoded by each VAE:\n")
    cols = ("direction", "speed_consistency", "mean_speed", "shape", "identity", "flicker")
    print("| decoder | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.4f}" if c == "flicker" else f"{row[c]:.2f}" for c in cols) + " |")
    return rows


if __name__ == "__main__":
    main()
