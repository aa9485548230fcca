"""`ldm-video generate`: text-to-video clips and iterative long videos (VidRD, Gu et al., arXiv 2309.03549).

Loads the SD 2.x base, injects the temporal layers (trained ones from --motion, else fresh zero-initialised
ones, i.e. the image model per frame), optionally a LoRA (diffusers or kohya format), then samples clip after clip with
`ldm_video.infer.pipeline.VideoSampler` and streams the frames into --out (mp4 / gif / PNG folder).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from ldm_video.errors import LdmVideoError
from ldm_video.infer.latents_io import LatentWriter
from ldm_video.infer.pipeline import (
    EXTEND_MODES,
    SCHEDULERS,
    LongVideoConfig,
    SamplingConfig,
    VideoSampler,
    encode_prompt,
    to_uint8,
)
from ldm_video.infer.video_io import VideoWriter, output_format
from ldm_video.infer.vidrd import REUSE_ORDERS, VidRDConfig
from ldm_video.noise import NOISE_PRIORS

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# VidRD's released settings. --seam-drop 1 by measurement (README, benchmarks/RESULTS.md): keeping all frames
# (VidRD's torch.cat) repeats the old last frame at every seam (seam jump ratio 0.00), dropping the M prompt
# frames jumps (1.36); dropping the one near-duplicate gives 1.06, as smooth as inside a clip.
VIDRD_DEFAULTS = {"pns_alpha": 4.0, "dsg_beta": 0.4}  # and overlap M = clip_frames // 2 (4 of 8)
DEFAULT_SEAM_DROP = 1


def default_seam_drop(order: str, overlap: int, clip_frames: int) -> int:
    """Leading frames of every later clip that `generate` leaves out unless --seam-drop says otherwise."""
    return min(overlap if order == "forward" else DEFAULT_SEAM_DROP, clip_frames - 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--base", required=True, help="SD 2.x base: diffusers folder, hub id, or one checkpoint file "
                   "(.safetensors / .ckpt, original layout; loaded offline)")
    g.add_argument("--base-variant", metavar="2.1-base|2.1-768-v|DIR", help="which SD 2.x a single-file --base is: "
                   "2.1-base (epsilon, 512 px) or 2.1-768-v (v-prediction, 768 px), or a diffusers folder of configs "
                   "(default: read from a .yaml beside the file, its header or its name, else 2.1-base)")
    g.add_argument("--motion", metavar="PATH", help="temporal layers: a folder saved by training (save_temporal), a "
                   "diffusers MotionAdapter folder, or an AnimateDiff motion module (.safetensors / .ckpt); without it, fresh zero-initialised temporal layers, i.e. the image model run per frame")
    g.add_argument("--lora", metavar="FILE", help="a LoRA .safetensors for the spatial U-Net, diffusers or kohya format")
    g.add_argument("--lora-scale", type=float, default=1.0, help="strength of --lora (default 1.0)")
    g.add_argument("--vae", metavar="DIR", help="decoder: a temporal-decoder folder from `ldm-video train-vae`, or "
                   "an SD 2.x base / vae folder (default: the base's own VAE, frame by frame)")
    g.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: the best available)")
    g.add_argument("--dtype", choices=("auto", *DTYPES), default="auto",
                   help="weights dtype; auto = fp16 on GPU, fp32 on CPU (fp16 needs a GPU)")
    g.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (default 0: torch's default); 1 is much faster on a machine "
                        "whose cores other jobs keep busy")

    g = parser.add_argument_group("sampling")
    g.add_argument("--prompt", required=True, help="text prompt")
    g.add_argument("--negative-prompt", default="", help="negative prompt for classifier-free guidance")
    g.add_argument("--guidance", type=float, default=7.5, help="guidance scale; <= 1 disables guidance (default 7.5)")
    g.add_argument("--scheduler", choices=tuple(SCHEDULERS), default="ddim", help="diffusers sampler (default ddim)")
    g.add_argument("--steps", type=int, default=50, help="denoising steps per clip (default 50)")
    g.add_argument("--noise-prior", choices=tuple(NOISE_PRIORS), default="iid",
                   help="PYoCo initial-noise prior of the first (and, with --extend independent, every) clip")
    g.add_argument("--noise-alpha", type=float, default=0.0,
                   help="PYoCo alpha of --noise-prior (mixed: 1, progressive: 2 in the paper; default 0)")
    g.add_argument("--seed", type=int, default=0, help="same seed, same video (default 0)")
    g.add_argument("--height", type=int, default=256, help="pixels, multiple of 8 (default 256)")
    g.add_argument("--width", type=int, default=256, help="pixels, multiple of 8 (default 256)")

    g = parser.add_argument_group("long videos (VidRD)")
    g.add_argument("--frames", type=int, default=16, help="frames in the output, exactly (default 16)")
    g.add_argument("--clip-frames", type=int, default=8,
                   help="frames denoised together, N (default 8; latent frames with a causal 3D --vae)")
    g.add_argument("--extend", choices=EXTEND_MODES, default="vidrd",
                   help="vidrd: FNR + PNS + DSG tie each clip to the last; independent: fresh noise per clip")
    g.add_argument("--overlap", type=int, help="vidrd: prompt frames M (default clip-frames // 2, i.e. 4 of 8)")
    g.add_argument("--pns-alpha", type=float,
                   help=f"vidrd: PNS weight of the old noise, a (default {VIDRD_DEFAULTS['pns_alpha']})")
    g.add_argument("--dsg-beta", type=float,
                   help=f"vidrd: DSG fraction of steps frame 0 is held, beta (default {VIDRD_DEFAULTS['dsg_beta']})")
    g.add_argument("--reuse-order", choices=REUSE_ORDERS, default="reversed",
                   help="vidrd: how the M prompt frames replay the previous clip's last M frames: reversed (VidRD's "
                        "released code; a directed motion runs backwards for M frames at each seam) or forward (time order kept; "
                        "see README)")
    g.add_argument("--seam-drop", type=int,
                   help="leading frames of every later clip left out of the output (default: reversed order "
                        f"{DEFAULT_SEAM_DROP}, the near-duplicate of the old last frame, chosen by measuring seam "
                        "metrics, see README; forward order M, the prompt frames; 0 for one-frame clips)")

    g = parser.add_argument_group("output")
    g.add_argument("--out", required=True, help="video.mp4 (H.264), video.gif, or a folder name for PNG frames")
    g.add_argument("--fps", type=float, default=8.0, help="frames per second of mp4 / gif (default 8)")
    g.add_argument("--crf", type=int, default=18, help="H.264 quality, 0 (lossless) .. 51 (default 18)")
    g.add_argument("--decode-chunk", type=int, default=8, help="frames per VAE decode call (default 8)")
    g.add_argument("--save-latents", metavar="FILE", help="also write the final latents to FILE.safetensors")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def resolve_device(name: str | None, dtype_name: str) -> tuple[torch.device, torch.dtype]:
    from ldm_video.info import default_device

    device = torch.device(name or default_device())
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LdmVideoError(f"--device {name}: CUDA is not available on this machine")
    if dtype_name == "auto":
        dtype_name = "fp32" if device.type == "cpu" else "fp16"
    if dtype_name == "fp16" and device.type == "cpu":
        raise LdmVideoError("--dtype fp16 needs a GPU; use fp32 or bf16 on CPU")
    return device, DTYPES[dtype_name]


def load_lora(model, path: str, scale: float) -> None:
    """A diffusers- or kohya-format LoRA file into the spatial U-Net (diffusers' own loader), at `scale`."""
    from ldm_video.lora import load_lora_file

    load_lora_file(model.unet, path, adapter_name="user_lora", scale=scale)


def load_video_model(base, motion: str | None, lora: str | None, lora_scale: float):
    """The VideoUNet in eval mode: base U-Net + temporal layers (saved or fresh) + optional LoRA."""
    from ldm_video import inflate_unet
    from ldm_video.checkpoint import load_motion

    device, dtype = base.unet.device, base.unet.dtype
    model = load_motion(motion, base.unet) if motion else inflate_unet(base.unet)
    if lora:
        load_lora(model, lora, lora_scale)
    return model.to(device=device, dtype=dtype).eval()  # new temporal / LoRA layers come in float32


def build_configs(args: argparse.Namespace) -> tuple[SamplingConfig, LongVideoConfig]:
    """Flags -> configs; errors name the flag."""
    vidrd_flags = {"overlap": args.overlap, "pns_alpha": args.pns_alpha, "dsg_beta": args.dsg_beta}
    if args.extend == "independent":
        given = [f"--{k.replace('_', '-')}" for k, v in vidrd_flags.items() if v is not None]
        given += ["--reuse-order"] if args.reuse_order != "reversed" else []
        if given:
            raise LdmVideoError(f"{', '.join(given)} only apply to --extend vidrd")
    defaults = {**VIDRD_DEFAULTS, "overlap": args.clip_frames // 2}
    if args.extend == "independent":
        defaults = {"overlap": 0, "pns_alpha": 0.0, "dsg_beta": 0.0}  # clips are not tied
    values = {k: defaults[k] if v is None else v for k, v in vidrd_flags.items()}
    if args.height % 8 or args.width % 8 or args.height < 8 or args.width < 8:
        raise LdmVideoError(f"--height/--width must be positive multiples of 8 (the VAE down-samples by 8), "
                            f"got {args.height}x{args.width}")
    try:
        sampling = SamplingConfig(scheduler=args.scheduler, steps=args.steps, guidance=args.guidance,
                                  noise_prior=args.noise_prior, noise_alpha=args.noise_alpha,
                                  height=args.height, width=args.width, seed=args.seed)
        vidrd = VidRDConfig(clip_frames=args.clip_frames, overlap=values["overlap"],
                            pns_alpha=values["pns_alpha"], dsg_beta=values["dsg_beta"], order=args.reuse_order)
        seam_drop = default_seam_drop(args.reuse_order, values["overlap"], args.clip_frames) \
            if args.seam_drop is None else args.seam_drop
        video = LongVideoConfig(num_frames=args.frames, extend=args.extend, vidrd=vidrd, seam_drop=seam_drop,
                                decode_chunk=args.decode_chunk)
    except ValueError as err:
        raise LdmVideoError(str(err)) from None
    return sampling, video


def run(args: argparse.Namespace) -> int:
    from ldm_video import load_base

    if args.threads < 0:
        raise LdmVideoError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    sampling, video = build_configs(args)
    output_format(args.out)  # refuse a bad --out / --save-latents before loading anything
    if args.save_latents and not args.save_latents.endswith(".safetensors"):
        raise LdmVideoError(f"{args.save_latents}: --save-latents writes safetensors; name it *.safetensors")
    device, dtype = resolve_device(args.device, args.dtype)
    if args.motion and not Path(args.motion).exists():
        raise LdmVideoError(f"{args.motion}: no such --motion folder or file")
    if args.lora and not Path(args.lora).exists():
        raise LdmVideoError(f"{args.lora}: no such LoRA file")
    if args.vae and not Path(args.vae).exists():
        raise LdmVideoError(f"{args.vae}: no such --vae folder")
    if args.quiet:
        import diffusers
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
    parts = ("unet", "text_encoder", "tokenizer", "scheduler") + (() if args.vae else ("vae",))
    base = load_base(args.base, components=parts, dtype=dtype, device=device, variant=args.base_variant)
    vae = base.vae
    if args.vae:
        from ldm_video.vae import load_video_vae

        vae = load_video_vae(args.vae, base=args.base, dtype=dtype, device=device, variant=args.base_variant)
        if vae.temporal_compression != 1:  # causal 3D VAE: the U-Net makes (F - 1) / 4 + 1 latent frames
            vae.check_num_frames(args.frames, what="--frames")
            video = replace(video, num_frames=vae.latent_frames(args.frames))
    model = load_video_model(base, args.motion, args.lora, args.lora_scale)
    if model.motion is not None and video.clip_frames > model.config.max_frames:
        raise LdmVideoError(f"--clip-frames {video.clip_frames} exceeds the temporal attention's max_frames "
                            f"{model.config.max_frames}")
    text = encode_prompt(base.tokenizer, base.text_encoder, args.prompt, args.negative_prompt, sampling.guidance,
                         device, dtype)  # (2|1, seq, dim), once per run
    sampler = VideoSampler(model=model, vae=vae, scheduler_config=dict(base.scheduler.config),
                           sampling=sampling, video=video, progress=not args.quiet)
    latent_writer = None
    if args.save_latents:
        meta = {"prompt": args.prompt, "negative_prompt": args.negative_prompt, "seed": str(args.seed),
                "base": args.base, "vae_scaling_factor": str(sampler.vae_scale), "layout": "b c f h w",
                "config": json.dumps({"sampling": vars(sampling), "frames": video.num_frames,
                                      "extend": video.extend, "vidrd": vars(video.vidrd),
                                      "seam_drop": video.seam_drop})}
        latent_writer = LatentWriter(args.save_latents, (1, 4, video.num_frames, *sampler.latent_shape[3:]), meta)
    try:
        with VideoWriter(args.out, fps=args.fps, crf=args.crf) as writer:
            for chunk in sampler(text):
                writer.append(to_uint8(chunk.frames).cpu().numpy())  # (f, H, W, 3) uint8
                if latent_writer is not None:
                    latent_writer.append(chunk.latents)  # (1, 4, f, h, w)
            if writer.frames_written != args.frames:  # the frame arithmetic is the contract
                raise RuntimeError(f"wrote {writer.frames_written} frames, expected {args.frames}")
        if latent_writer is not None:
            latent_writer.close()
    except BaseException:
        if latent_writer is not None:
            latent_writer.abort()
        raise
    if not args.quiet:
        print(f"wrote {args.out} ({args.frames} frames, {video.num_clips} clips)")
    return 0
