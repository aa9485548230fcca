"""Seconds per training step and peak memory: ldm-video's VideoUNet against a plain diffusers UNetMotionModel.

Same shapes for both (batch 1, 8 frames, 128 px -> 16x16 latents, cached-latent training: no VAE, no text
encoder), same motion modules (a MotionAdapter of the same config), frozen fp32 spatial weights, bitsandbytes
AdamW8bit over the trainable parameters, no gradient checkpointing. Each case runs in its own process, so
the process peak RSS is per case. Random weights (SD 2.1 shapes from `ldm_video.sd2_configs.shipped_config`,
or the tiny test U-Net); nothing is downloaded.

    python benchmarks/train_step.py --size tiny --steps 5
    python benchmarks/train_step.py --size sd21 --steps 2      # ~10 GB of RAM, minutes on a small CPU
    python benchmarks/train_step.py --size sd21 --device cuda --precision bf16 --frames 16 --resolution 512 \
        --checkpointing --steps 10                              # a GPU: the 24 GB preset's step, peak CUDA memory

With `--precision bf16|fp16` the frozen weights are held in that dtype, the trainable ones in fp32, and the forward
pass is autocast, as `train --mixed-precision` does; on a GPU the peak is `torch.cuda.max_memory_allocated` over the
timed steps (on a CPU, the tensors' bytes as tracked by `ldm_video.memory`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time

CASES = ("ldm-video attn", "ldm-video attn+conv", "diffusers UNetMotionModel")


def _unet_config(size: str) -> dict:
    from ldm_video.sd2_configs import shipped_config
    from ldm_video.testing import tiny_unet_config

    return shipped_config("unet") if size == "sd21" else tiny_unet_config()


def run_case(size: str, case: str, steps: int, frames: int, resolution: int, threads: int, device: str = "cpu",
             precision: str = "fp32", optimizer_name: str = "adamw8bit", checkpointing: bool = False) -> dict:
    """Build the model of `case`, time `steps` optimiser steps after one warm-up step."""
    import torch
    from diffusers import UNet2DConditionModel, UNetMotionModel
    from einops import repeat

    from ldm_video import VideoUNetConfig, inflate_unet
    from ldm_video.device import DTYPES
    from ldm_video.memory import TensorMemoryTracker
    from ldm_video.video_unet import motion_adapter_for

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = _unet_config(size)
    with torch.device(device):  # built where it runs: initialising 866M parameters on a CPU takes a while
        unet2d = UNet2DConditionModel(**cfg).requires_grad_(False)
        layers = "attn+conv" if case.endswith("attn+conv") else "attn"
        vcfg = VideoUNetConfig(temporal_layers=layers, attention_heads=8, max_frames=32)
        if case.startswith("diffusers"):
            model = UNetMotionModel.from_unet2d(unet2d, motion_adapter_for(unet2d.config, vcfg))
            del unet2d
            model.freeze_unet2d_params()  # only the motion modules train
        else:
            model = inflate_unet(unet2d, vcfg)
    autocast_dtype = None if precision == "fp32" else DTYPES[precision]
    if autocast_dtype is not None:  # frozen weights in the mixed-precision dtype, trainable ones fp32 (train/setup.py)
        model.to(autocast_dtype)
        if hasattr(model, "temporal_modules"):
            for module in model.temporal_modules().values():
                module.float()
        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    if checkpointing:
        model.enable_gradient_checkpointing()
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer_name == "adamw8bit":
        import bitsandbytes as bnb

        optimizer = bnb.optim.AdamW8bit(params, lr=1e-5)
    else:
        optimizer = torch.optim.AdamW(params, lr=1e-5)
    h = resolution // 8
    dim = cfg["cross_attention_dim"]
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, frames, h, h, generator=g).to(device)  # (b, 4, f, h, w)
    text = torch.randn(1, 77, dim, generator=g).to(device)  # (b, seq, dim)
    timestep = torch.tensor([500], device=device)
    cuda = torch.device(device).type == "cuda"

    def step() -> float:
        noise = torch.randn(latents.shape, generator=g).to(device)  # (b, 4, f, h, w)
        with torch.autocast(torch.device(device).type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            if case.startswith("diffusers"):
                text_f = repeat(text, "b s d -> (b f) s d", f=frames)  # UNetMotionModel wants (b f) text
                pred = model(latents + noise, timestep, text_f).sample
            else:
                pred = model(latents + noise, timestep, text).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    step()  # warm-up: allocates the optimiser states
    tracker = contextlib.nullcontext() if cuda else TensorMemoryTracker()  # a dispatch mode: it would slow the GPU
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with tracker:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    if cuda:
        peak = torch.cuda.max_memory_allocated()
    else:
        static = sum(p.numel() * p.element_size() for p in model.parameters())
        static += sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                      if isinstance(t, torch.Tensor))
        peak = static + tracker.peak  # weights + optimiser states + peak of the step's tensors
    return {
        "size": size, "case": case, "frames": frames, "resolution": resolution, "steps": steps,
        "threads": threads, "device": torch.cuda.get_device_name() if cuda else "cpu", "precision": precision,
        "optimizer": optimizer_name, "checkpointing": checkpointing,
        "trainable_params": sum(p.numel() for p in params),
        "seconds_per_step": seconds,
        "peak_tensor_bytes": peak,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("tiny", "sd21", "all"), default="tiny")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (after one warm-up)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (more than the free cores slows down)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                        help="autocast dtype of the forward pass (default fp32)")
    parser.add_argument("--optimizer", choices=("adamw8bit", "adamw"), default="adamw8bit",
                        help="bitsandbytes' 8-bit AdamW (default, as the presets) or torch's AdamW")
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing in both models")
    parser.add_argument("--out", default=None, help="append JSON lines here")
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = run_case(args.one[0], args.one[1], args.steps, args.frames, args.resolution, args.threads,
                          args.device, args.precision, args.optimizer, args.checkpointing)
        print(json.dumps(result))
        return
    sizes = ("tiny", "sd21") if args.size == "all" else (args.size,)
    rows = []
    for size in sizes:
        for case in args.cases:  # step: one fresh process per case
            cmd = [sys.executable, __file__, "--one", size, case, "--steps", str(args.steps), "--frames",
                   str(args.frames), "--resolution", str(args.resolution), "--threads", str(args.threads),
                   "--device", args.device, "--precision", args.precision, "--optimizer", args.optimizer,
                   *(["--checkpointing"] if args.checkpointing else [])]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
            if proc.returncode:
                raise SystemExit(f"{size} {case} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{size:5s} {case:27s} {row['device']} {row['precision']} {row['seconds_per_step']:8.3f} s/step  "
                  f"tensors {row['peak_tensor_bytes'] / 1e9:6.2f} GB  rss {row['max_rss_bytes'] / 1e9:6.2f} GB  "
                  f"trainable {row['trainable_params'] / 1e6:.1f}M", flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    for size in sizes:
        by_case = {r["case"]: r for r in rows if r["size"] == size}
        ours, ref = by_case.get("ldm-video attn"), by_case.get("diffusers UNetMotionModel")
        if ours and ref:
            print(f"{size}: ldm-video attn / diffusers UNetMotionModel: time x{ours['seconds_per_step'] / ref['seconds_per_step']:.2f}, "
                  f"tensor memory x{ours['peak_tensor_bytes'] / ref['peak_tensor_bytes']:.2f}")


if __name__ == "__main__":
    main()
