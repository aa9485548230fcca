"""`ldm-video generate` speed and seams on CPU, side by side with diffusers' AnimateDiffPipeline.

    python benchmarks/generate.py speed     # s/frame, ours vs AnimateDiffPipeline, tiny and small models
    python benchmarks/generate.py speed --models sd21 --device cuda --dtype fp16 --steps 20   # a GPU, 512 px
    python benchmarks/generate.py linear    # s/frame of long videos at 32..256 frames (constant = linear time)
    python benchmarks/generate.py seams     # seam metrics for each --seam-drop, VidRD vs independent clips

Models are random (no weights can be downloaded here): SD 2.1-shaped pipelines written in the diffusers
layout (`sd21`: full size, 16 frames at --size, default 512 px; ~5 GB written to --workdir), with attention-only
temporal layers given random values and written as a diffusers MotionAdapter, which both pipelines load. Same
scheduler (DDIM), steps, size, guidance and initial latents for both.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ldm_video import VideoUNetConfig, inflate_unet, load_base
from ldm_video.checkpoint import load_motion
from ldm_video.device import DTYPES
from ldm_video.infer.metrics import drift, flicker, seam_jump_ratio
from ldm_video.infer.pipeline import (
    LongVideoConfig,
    SamplingConfig,
    VideoSampler,
    encode_prompt,
    make_scheduler,
)
from ldm_video.infer.vidrd import VidRDConfig, clip_starts
from ldm_video.testing import write_random_sd21, write_tiny_sd
from ldm_video.video_file import to_uint8

PROMPT, NEGATIVE = "a red square moving right", "watermark"


def write_small_sd(path: Path) -> Path:
    """An SD 2.1-shaped pipeline 4 blocks deep (channels 64..256, text width 128): bigger than the test model."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tiny = write_tiny_sd(path / "_tiny")  # for its tokenizer, VAE and scheduler
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(64, 128, 256, 256), cross_attention_dim=128, attention_head_dim=(1, 2, 4, 4),
        use_linear_projection=True, norm_num_groups=32)
    tokenizer = CLIPTokenizer.from_pretrained(tiny, subfolder="tokenizer")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=4,
        num_attention_heads=4, max_position_embeddings=77, hidden_act="gelu", projection_dim=128,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=0))
    pipe = StableDiffusionPipeline(
        unet=unet, vae=AutoencoderKL.from_pretrained(tiny, subfolder="vae"), text_encoder=text_encoder,
        tokenizer=tokenizer, scheduler=load_base(str(tiny), components=("scheduler",)).scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.scheduler = make_scheduler("ddim", pipe.scheduler.config)
    out = path / "small"
    pipe.save_pretrained(out, safe_serialization=True)
    return out


def write_adapter(base_path: str, out: Path, max_frames: int, std: float = 0.05) -> Path:
    """Random attention-only temporal layers for `base_path`, saved as a diffusers MotionAdapter folder."""
    model = inflate_unet(load_base(base_path, components=("unet",)).unet,
                         VideoUNetConfig(temporal_layers="attn", max_frames=max_frames))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.motion.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    model.motion.save_pretrained(out)
    return out


class Ours:
    """ldm-video's sampler, model loaded once; `__call__` times prompt encoding + sampling + decoding."""

    def __init__(self, base_path: str, adapter: Path | None, device: str = "cpu", dtype: torch.dtype = torch.float32):
        self.base = load_base(base_path, dtype=dtype, device=device)
        self.device, self.dtype = device, dtype
        self.model = (load_motion(adapter, self.base.unet) if adapter else inflate_unet(self.base.unet))
        self.model = self.model.to(device=device, dtype=dtype).eval()

    def sampler(self, sampling: SamplingConfig, video: LongVideoConfig) -> VideoSampler:
        return VideoSampler(self.model, self.base.vae, dict(self.base.scheduler.config), sampling, video,
                            progress=False)

    def __call__(self, sampling: SamplingConfig, video: LongVideoConfig) -> np.ndarray:
        text = encode_prompt(self.base.tokenizer, self.base.text_encoder, PROMPT, NEGATIVE, sampling.guidance,
                             self.device, self.dtype)
        return np.concatenate([to_uint8(c.frames).cpu().numpy() for c in self.sampler(sampling, video)(text)])


class Peer:
    """diffusers' AnimateDiffPipeline with the same base and MotionAdapter."""

    def __init__(self, base_path: str, adapter: Path, device: str = "cpu", dtype: torch.dtype = torch.float32):
        from diffusers import AnimateDiffPipeline, MotionAdapter

        base = load_base(base_path, dtype=dtype)
        self.pipe = AnimateDiffPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer,
                                        unet=base.unet, motion_adapter=MotionAdapter.from_pretrained(adapter,
                                                                                                     torch_dtype=dtype),
                                        scheduler=make_scheduler("ddim", base.scheduler.config))
        self.pipe.to(device)
        self.pipe.set_progress_bar_config(disable=True)

    def __call__(self, sampling: SamplingConfig, num_frames: int, latents: torch.Tensor) -> np.ndarray:
        frames = self.pipe(PROMPT, negative_prompt=NEGATIVE, num_frames=num_frames, height=sampling.height,
                           width=sampling.width, num_inference_steps=sampling.steps,
                           guidance_scale=sampling.guidance, latents=latents, output_type="pt").frames[0]
        return to_uint8(frames.float() * 2 - 1).cpu().numpy()  # (f, H, W, 3)


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()  # frames come back as numpy: the GPU has finished
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def speed(args, work: Path) -> None:
    models = {"tiny": lambda: str(write_tiny_sd(work / "tiny")), "small": lambda: str(write_small_sd(work)),
              "sd21": lambda: str(write_random_sd21(Path(args.workdir or work) / "sd21-epsilon"))}
    dtype = DTYPES[args.dtype]
    print("| model | size | frames | steps | stat | ours s/frame | AnimateDiffPipeline s/frame | ratio | "
          "max abs diff (uint8) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        base_path = models[name]()
        adapter = write_adapter(base_path, work / f"{name}-adapter", max_frames=32)
        ours, peer = Ours(base_path, adapter, args.device, dtype), Peer(base_path, adapter, args.device, dtype)
        size, frames = {"tiny": 64, "small": 128, "sd21": 512}[name], 16
        size = args.size or size
        sampling = SamplingConfig(scheduler="ddim", steps=args.steps, guidance=7.5, height=size, width=size, seed=0)
        video = LongVideoConfig(num_frames=frames, vidrd=VidRDConfig(clip_frames=frames, overlap=frames // 2),
                                decode_chunk=frames)
        latents = ours.sampler(sampling, video).initial_noise(0, None, torch.Generator().manual_seed(0))
        latents = latents.to(dtype)  # the pipeline feeds them to its U-Net as given
        ours(sampling, video), peer(sampling, frames, latents)  # warm-up
        t_ours, t_peer, peaks = [], [], {}
        cuda = args.device.startswith("cuda")
        for _ in range(args.repeats):  # alternate, so load from other jobs hits both alike
            for label, call in (("peer", lambda p=peer, s=sampling, f=frames, z=latents: p(s, f, z)),
                                ("ours", lambda o=ours, s=sampling, v=video: o(s, v))):
                if cuda:  # both models stay loaded: count what a call allocates above them
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    resident = torch.cuda.memory_allocated()
                t, out = timed(call, 1)
                (t_ours if label == "ours" else t_peer).append(t)
                if label == "ours":
                    f_ours = out
                else:
                    f_peer = out
                if cuda:
                    peaks[label] = torch.cuda.max_memory_allocated() - resident
        diff = int(np.abs(f_ours.astype(int) - f_peer).max())
        for stat in (min, statistics.median):  # min: least disturbed by other jobs on the machine
            a, b = stat(t_ours), stat(t_peer)
            print(f"| {name} | {size}px | {frames} | {args.steps} | {stat.__name__} of {args.repeats} | "
                  f"{a / frames:.4f} | {b / frames:.4f} | {a / b:.2f} | {diff} |", flush=True)
        if cuda:
            print(f"peak CUDA memory a call allocates above the loaded weights, {name}: ours "
                  f"{peaks['ours'] / 2**30:.2f} GiB, AnimateDiffPipeline {peaks['peer'] / 2**30:.2f} GiB "
                  f"(x{peaks['ours'] / peaks['peer']:.2f})", flush=True)


def linear(args, work: Path) -> None:
    """s/frame at 32..256 frames (N=8, M=4, --seam-drop 1), lengths interleaved over repeats, min taken.

    Wall time and this process's CPU time: with one thread, CPU time counts the work done and is much less
    moved by other jobs on a shared machine than wall time is.
    """
    base_path = str(write_tiny_sd(work / "tiny"))
    ours = Ours(base_path, write_adapter(base_path, work / "adapter", max_frames=32))
    sampling = SamplingConfig(steps=args.steps, guidance=7.5, height=64, width=64)
    text = encode_prompt(ours.base.tokenizer, ours.base.text_encoder, PROMPT, NEGATIVE, 7.5, "cpu", torch.float32)
    lengths = (32, 64, 128, 256)
    wall: dict[int, float] = {}
    cpu: dict[int, float] = {}
    for _ in range(args.repeats):
        for frames in lengths:
            video = LongVideoConfig(num_frames=frames, vidrd=VidRDConfig(clip_frames=8, overlap=4), seam_drop=1)
            start, start_cpu = time.perf_counter(), time.process_time()
            for chunk in ours.sampler(sampling, video)(text):
                to_uint8(chunk.frames).numpy()
            wall[frames] = min(wall.get(frames, float("inf")), time.perf_counter() - start)
            cpu[frames] = min(cpu.get(frames, float("inf")), time.process_time() - start_cpu)
    print(f"| frames | clips | wall s/frame (min of {args.repeats}) | vs 32 | CPU s/frame (min of {args.repeats}) "
          "| vs 32 |")
    print("|---|---|---|---|---|---|")
    for frames in lengths:
        clips = LongVideoConfig(num_frames=frames, vidrd=VidRDConfig(8, 4), seam_drop=1).num_clips
        w, c = wall[frames] / frames, cpu[frames] / frames
        print(f"| {frames} | {clips} | {w:.4f} | {w / (wall[32] / 32):.2f} | {c:.4f} | {c / (cpu[32] / 32):.2f} |")


def seams(args, work: Path) -> None:
    """Seam metrics of 40-frame videos (N=8, M=4) for each --seam-drop, and for independent clips.

    A random U-Net makes frames that are coherent in time only through their initial noise, so the first
    clip draws it from PYoCo's progressive prior (alpha 4): within-clip pairs then differ little, and a seam
    that jumps shows. Two models: fresh temporal layers (the image model per frame; isolates what FNR / PNS /
    DSG do to the noise) and random attention-only temporal layers (frames interact).
    """
    base_path = str(write_tiny_sd(work / "tiny"))
    adapter = write_adapter(base_path, work / "adapter", max_frames=32, std=0.2)
    n, m, frames = 8, 4, 40
    print(f"mean of seeds {args.seeds}; {args.steps} DDIM steps, 64 px, guidance 7.5, first clip progressive "
          "alpha 4")
    print("| temporal layers | extend | seam-drop | seam jump ratio | flicker | drift clip 5 vs 1 |")
    print("|---|---|---|---|---|---|")
    for label, motion in (("fresh (per frame)", None), ("random attn", adapter)):
        ours = Ours(base_path, motion)
        for extend, drop in [("vidrd", 0), ("vidrd", 1), ("vidrd", 2), ("vidrd", m), ("independent", 0)]:
            rows = []
            for seed in args.seeds:
                sampling = SamplingConfig(steps=args.steps, guidance=7.5, height=64, width=64, seed=seed,
                                          noise_prior="progressive", noise_alpha=4.0)
                vidrd = VidRDConfig(n, m) if extend == "vidrd" else VidRDConfig(n, 0, 0.0, 0.0)
                video = LongVideoConfig(num_frames=frames, extend=extend, vidrd=vidrd, seam_drop=drop)
                v = ours(sampling, video)
                starts = clip_starts(frames, n, n - drop)
                rows.append((seam_jump_ratio(v, starts), flicker(v), drift(v, starts)[4]))
            mean = np.mean(np.array(rows), axis=0)
            print(f"| {label} | {extend} | {drop} | {mean[0]:.3f} | {mean[1]:.4f} | {mean[2]:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("speed", "linear", "seams"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the CI box is shared)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["tiny", "small"], choices=("tiny", "small", "sd21"))
    parser.add_argument("--device", default="cpu", help="speed: cpu (default) or cuda")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help="speed: weights' dtype")
    parser.add_argument("--size", type=int, default=None, help="speed: frame size in pixels instead of the model's")
    parser.add_argument("--workdir", default=None, help="speed: keep the full-size sd21 model here between runs")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{args.threads} thread(s)"
    print(f"# {args.what} — {platform.machine()}, torch {torch.__version__}, {device}, {args.dtype}")
    with tempfile.TemporaryDirectory() as tmp:
        {"speed": speed, "linear": linear, "seams": seams}[args.what](args, Path(tmp))


if __name__ == "__main__":
    main()
