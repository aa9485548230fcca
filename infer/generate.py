"""`ldm-video generate`: text-to-video clips and iterative long videos (VidRD, Gu et al., arXiv 2309.03549).

Loads the SD 2.x base, injects the temporal layers (trained ones from --motion, else fresh zero-initialised
ones, i.e. the image model per frame), optionally a LoRA (diffusers or kohya format), then samples clip after clip with
`ldm_video.infer.pipeline.VideoSampler` and streams the frames into --out (mp4 / gif / PNG folder).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ldm_video.checkpoint import check_writable
from ldm_video.device import DTYPES, resolve_device
from ldm_video.errors import LdmVideoError
from ldm_video.flags import hide_library_progress
from ldm_video.infer import run_defaults
from ldm_video.infer.latents_io import LatentWriter
from ldm_video.infer.model import load_video_model
from ldm_video.infer.pipeline import (
    CONTEXT_INITS,
    DEFAULT_HISTORY_FREE,
    EXTEND_MODES,
    HISTORY_FREE,
    SCHEDULERS,
    LongVideoConfig,
    PromptEmbeddings,
    SamplingConfig,
    VideoSampler,
)
from ldm_video.infer.prompts import PromptSchedule, output_path, read_prompts
from ldm_video.infer.video_io import VideoWriter, output_format, sidecar_path
from ldm_video.infer.vidrd import (
    DEFAULT_REUSE_ORDER,
    MIRRORED_SEAM_DROP,
    REUSE_ORDERS,
    VidRDConfig,
    default_seam_drop,
)
from ldm_video.noise import NOISE_PRIORS
from ldm_video.video_file import to_uint8

logger = logging.getLogger("ldm_video.generate")

VIDRD_DEFAULTS = {"pns_alpha": 4.0, "dsg_beta": 0.4}  # VidRD's released settings; overlap M = clip_frames // 2
DEFAULT_CONTEXT_INIT = "fresh"
# --prompt-edit with --prompt-at: on the toy world 0.5 kept position across a colour switch (0.3 did not; README)
DEFAULT_PROMPT_EDIT = 0.5




def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--base", help="SD 2.x base: diffusers folder, hub id, or one checkpoint file (.safetensors / "
                   ".ckpt, original layout; loaded offline) (default: the base --motion was trained on, else "
                   "stabilityai/stable-diffusion-2-1-base)")
    g.add_argument("--base-variant", metavar="2.1-base|2.1-768-v|DIR", help="which SD 2.x a single-file --base is: "
                   "2.1-base (epsilon, 512 px) or 2.1-768-v (v-prediction, 768 px), or a diffusers folder of configs "
                   "(default: read from a .yaml beside the file, its header or its name, else 2.1-base)")
    g.add_argument("--motion", metavar="PATH", help="temporal layers: a folder saved by training (save_temporal), a "
                   "diffusers MotionAdapter folder, or an AnimateDiff motion module (.safetensors / .ckpt); without it, fresh zero-initialised temporal layers, i.e. the image model run per frame")
    g.add_argument("--motion-scale", type=float, default=1.0,
                   help="strength of the --motion's temporal layers: each adds scale x its branch to its input "
                        "(default 1.0, as trained; 0 is the image model). 1.5 made more of the toy demo's short clips "
                        "pace (0.73 of steps against 0.62-0.66) but not its long context videos (docs/generate.md)")
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
    g.add_argument("--prompt", help="text prompt (or --prompts FILE)")
    g.add_argument("--prompt-at", nargs=2, action="append", metavar=("FRAME", "TEXT"),
                   help="prompt travel: from output frame FRAME on, the clips are asked for TEXT (repeatable); each "
                        "clip takes the prompt scheduled at its first new frame")
    g.add_argument("--prompt-blend", type=int, default=0, metavar="CLIPS",
                   help="prompt travel: move the text embedding to the new prompt over CLIPS clips instead of "
                        "switching at once (default 0)")
    g.add_argument("--prompt-edit", type=float, default=None, metavar="FRACTION",
                   help="prompt travel: every clip after a switch denoises this fraction of its first steps, where the "
                        "layout forms, with the video's first prompt, so shape and position carry over (A1111's "
                        "[old:new:when] prompt editing; default 0.5 with --prompt-at: measured in README; 0 switches outright)")
    g.add_argument("--prompts", metavar="FILE", help="many videos: one prompt per line (# comments); with --seeds, one "
                   "video per (prompt, seed), model loaded once, named OUT-p{index:03d}-s{seed}.ext")
    g.add_argument("--negative-prompt", default="", help="negative prompt for classifier-free guidance")
    g.add_argument("--guidance", type=float, default=7.5, help="guidance scale; <= 1 disables guidance (default 7.5)")
    g.add_argument("--scheduler", choices=tuple(SCHEDULERS), default="ddim", help="diffusers sampler (default ddim)")
    g.add_argument("--steps", type=int, default=50, help="denoising steps per clip (default 50)")
    g.add_argument("--noise-prior", choices=tuple(NOISE_PRIORS), default="iid",
                   help="PYoCo initial-noise prior of the first (and, with --extend independent, every) clip")
    g.add_argument("--noise-alpha", type=float, default=0.0,
                   help="PYoCo alpha of --noise-prior (mixed: 1, progressive: 2 in the paper; default 0)")
    g.add_argument("--seed", type=int, default=0, help="same seed, same video (default 0); -1 draws a random seed, "
                   "printed and recorded in the video's .json")
    g.add_argument("--seeds", metavar="LIST", help="many videos: seeds like 0-7 or 1,5,9, -1 for a random one "
                   "(--seeds=-1,-1,-1: three random seeds; overrides --seed)")
    g.add_argument("--height", type=int, default=256, help="pixels, multiple of 8 (default 256)")
    g.add_argument("--width", type=int, default=256, help="pixels, multiple of 8 (default 256)")

    g = parser.add_argument_group("long videos (VidRD)")
    g.add_argument("--frames", type=int, default=16, help="frames in the output, exactly (default 16)")
    g.add_argument("--clip-frames", type=int, default=None,
                   help="frames denoised together, N (default: the clip length --motion was trained on, else 8; "
                        "latent frames with a causal 3D --vae)")
    g.add_argument("--extend", choices=EXTEND_MODES, default=None,
                   help="default: context for a --motion trained with --context-frames, else vidrd. "
                        "vidrd: FNR + PNS + DSG tie each clip to the last; context: each clip is given the last "
                        "--overlap frames of the one before, clean, and continues them (temporal layers trained "
                        "with `train --context-frames`); independent: fresh noise per clip; "
                        "freenoise: diffusers' FreeNoise (context windows of --clip-frames, --clip-frames - "
                        "--overlap apart; memory grows with --frames; attention-only --motion)")
    g.add_argument("--freenoise-split", action="store_true",
                   help="freenoise: diffusers' split inference (bounds the memory of long videos)")
    g.add_argument("--overlap", type=int, help="vidrd: prompt frames M (default clip-frames // 2, i.e. 4 of 8); "
                   "context: frames given to the next clip (default: the --motion's --context-frames)")
    g.add_argument("--context-noise", type=int, default=None, metavar="T",
                   help="context: noise the given frames to timestep T (and tell the U-Net so), as the layers were "
                        "trained with `train --context-noise` (default: half the --motion's trained maximum, 0 for "
                        "layers trained on clean frames)")
    g.add_argument("--context-init", choices=CONTEXT_INITS, default=None,
                   help="context: where each later clip's new frames start: from fresh noise, or from the last given "
                        "frame diffused to the first timestep, which keeps the scene's colours (default "
                        f"{DEFAULT_CONTEXT_INIT}, by measurement: README)")
    g.add_argument("--context-anchor", action=argparse.BooleanOptionalAction, default=None,
                   help="context: shift each later clip's new frames to the first clip's latent channel means, so "
                        "the scene keeps its colours however long the video (default on: measured to stop the "
                        "background drift of long videos, README)")
    g.add_argument("--context-guidance", action=argparse.BooleanOptionalAction, default=None,
                   help="context: classifier-free guidance over the given frames as well as the prompt: the "
                        "unconditional branch also goes without them, so --guidance pulls each clip toward "
                        "continuing the last (after history guidance, Song et al. 2025; see --history-free for its "
                        "cost). Default on "
                        "with --guidance > 1 (it kept the toy demo's motion in long videos, README), off for a "
                        "--motion trained with --context-prob 1, which never saw a clip without given frames")
    g.add_argument("--history-scale", type=float, default=None, metavar="W",
                   help="context, with --context-guidance: weigh the given frames by W apart from the prompt's "
                        "--guidance (composite history guidance, Song et al. 2025: a third U-Net row, the prompt "
                        "without the given frames; about 1.35x the seconds per frame on the toy model, measured with "
                        "--history-free noised; with the default dropped rows it paced less: docs/generate.md). "
                        "Default: both at --guidance, two rows")
    g.add_argument("--history-free", choices=HISTORY_FREE, default=None,
                   help="context, with --context-guidance: how guidance's rows without the given frames go without "
                        "them: dropped (the new frames run alone, a clip with no history: M fewer frames in those "
                        "rows, run in the same U-Net call as the row with them: on the toy model about 1.1x the "
                        "noised form's seconds per frame, 1.4-2.0x FreeNoise's at equal steps) or noised (their "
                        "places hold the previous clip's frames noised to each step's timestep). Default "
                        f"{DEFAULT_HISTORY_FREE}: it paced the toy demo's held-out shape more at equal steps (README)")
    g.add_argument("--pns-alpha", type=float,
                   help=f"vidrd: PNS weight of the old noise, a (default {VIDRD_DEFAULTS['pns_alpha']})")
    g.add_argument("--dsg-beta", type=float,
                   help=f"vidrd: DSG fraction of steps frame 0 is held, beta (default {VIDRD_DEFAULTS['dsg_beta']})")
    g.add_argument("--reuse-order", choices=REUSE_ORDERS, default=None,
                   help="vidrd: how the M prompt frames replay the previous clip's last M frames: forward (time order "
                        "kept; the default since it measured better on trained toy models, see README) or reversed "
                        "(VidRD's released code; a directed motion runs backwards for M frames at each seam)")
    g.add_argument("--seam-drop", type=int,
                   help="leading frames of every later clip left out of the output (default: reversed order "
                        f"{MIRRORED_SEAM_DROP}, the near-duplicate of the old last frame, chosen by measuring seam "
                        "metrics, see README; forward order M, the prompt frames; 0 for one-frame clips)")

    g = parser.add_argument_group("output")
    g.add_argument("--out", required=True, help="video.mp4 (H.264), video.gif, or a folder name for PNG frames")
    g.add_argument("--fps", type=float, default=None,
                   help="frames per second of mp4 / gif (default: the frame rate --motion was trained on, else 8)")
    g.add_argument("--crf", type=int, default=18, help="H.264 quality, 0 (lossless) .. 51 (default 18)")
    g.add_argument("--decode-chunk", type=int, default=8, help="frames per VAE decode call (default 8)")
    g.add_argument("--save-latents", metavar="FILE", help="also write the final latents to FILE.safetensors "
                   "(a batch: FILE-p{index:03d}-s{seed}.safetensors)")
    g.add_argument("--no-progress", dest="quiet", action="store_true", help="no progress bars")
    from ldm_video.flags import add_deprecated

    add_deprecated(g, "--quiet", "--no-progress", "quiet", switch=True)


def build_configs(args: argparse.Namespace) -> tuple[SamplingConfig, LongVideoConfig]:
    """Flags -> configs; errors name the flag."""
    run_defaults.fill_clip(args)  # --clip-frames / --fps as the --motion was trained, unless given
    vidrd_flags = {"overlap": args.overlap, "pns_alpha": args.pns_alpha, "dsg_beta": args.dsg_beta}
    if args.extend is None:
        args.extend = run_defaults.default_extend(args)
    if args.negative_prompt and args.guidance <= 1:
        raise LdmVideoError(f"--negative-prompt needs classifier-free guidance; --guidance {args.guidance} (<= 1) "
                            "turns it off")
    if args.lora_scale != 1.0 and not args.lora:
        raise LdmVideoError("--lora-scale needs --lora FILE")
    if not math.isfinite(args.motion_scale) or args.motion_scale < 0:
        raise LdmVideoError(f"--motion-scale must be a number >= 0, got {args.motion_scale}")
    if args.motion_scale != 1.0 and not args.motion:
        raise LdmVideoError("--motion-scale needs --motion PATH (fresh temporal layers add nothing to scale)")
    if args.noise_alpha and args.noise_prior == "iid":
        raise LdmVideoError(f"--noise-alpha {args.noise_alpha} has no effect with --noise-prior iid; choose "
                            "mixed or progressive")
    if args.freenoise_split and args.extend != "freenoise":
        raise LdmVideoError("--freenoise-split applies to --extend freenoise only")
    if args.extend == "freenoise":
        given = [f"--{k.replace('_', '-')}" for k in ("pns_alpha", "dsg_beta", "seam_drop", "save_latents",
                                                       "prompt_blend", "prompt_edit") if getattr(args, k)]
        given += ["--reuse-order"] if args.reuse_order is not None else []
        given += ["--noise-prior"] if args.noise_prior != "iid" else []
        given += ["--motion-scale"] if args.motion_scale != 1.0 else []  # diffusers' pipeline runs the modules
        if given:
            raise LdmVideoError(f"{', '.join(given)} do not apply to --extend freenoise (FreeNoise draws its own "
                                "shuffled noise and fuses windows instead of clips)")
        args.pns_alpha, args.dsg_beta, args.seam_drop = 0.0, 0.0, 0
    if args.extend in ("independent", "context"):
        flags = {k: v for k, v in vidrd_flags.items() if args.extend == "independent" or k != "overlap"}
        given = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v is not None]
        given += ["--reuse-order"] if args.reuse_order is not None else []
        given += ["--seam-drop"] if args.extend == "context" and args.seam_drop is not None else []
        if given:
            raise LdmVideoError(f"{', '.join(given)} only apply to --extend vidrd")
    for flag in ("context_noise", "context_init", "context_anchor", "context_guidance", "history_scale",
                 "history_free"):
        if getattr(args, flag) is not None and args.extend != "context":
            raise LdmVideoError(f"--{flag.replace('_', '-')} applies to --extend context only (this video: --extend "
                                f"{args.extend})")
    if args.context_guidance and args.guidance <= 1:
        raise LdmVideoError(f"--context-guidance needs --guidance > 1 (it shapes classifier-free guidance's "
                            f"unconditional branch), got --guidance {args.guidance:g}")
    if args.history_scale is not None and not (math.isfinite(args.history_scale) and args.history_scale >= 0):
        raise LdmVideoError(f"--history-scale must be a number >= 0, got {args.history_scale}")
    for flag in ("history_scale", "history_free"):
        if getattr(args, flag) is not None and not run_defaults.context_guidance(args):
            raise LdmVideoError(f"--{flag.replace('_', '-')} shapes history guidance, which is off for this video "
                                "(--no-context-guidance, --guidance <= 1, or a --motion trained with given frames "
                                "in every clip)")
    order = args.reuse_order or DEFAULT_REUSE_ORDER
    defaults = {**VIDRD_DEFAULTS, "overlap": args.clip_frames // 2}
    if args.extend == "independent":
        defaults = {"overlap": 0, "pns_alpha": 0.0, "dsg_beta": 0.0}  # clips are not tied
    if args.extend == "context":
        defaults = {"overlap": run_defaults.context_overlap(args), "pns_alpha": 0.0, "dsg_beta": 0.0}
    values = {k: defaults[k] if v is None else v for k, v in vidrd_flags.items()}
    if args.height % 8 or args.width % 8 or args.height < 8 or args.width < 8:
        raise LdmVideoError(f"--height/--width must be positive multiples of 8 (the VAE down-samples by 8), "
                            f"got {args.height}x{args.width}")
    try:
        sampling = SamplingConfig(scheduler=args.scheduler, steps=args.steps, guidance=args.guidance,
                                  noise_prior=args.noise_prior, noise_alpha=args.noise_alpha,
                                  height=args.height, width=args.width, seed=args.seed)
        vidrd = VidRDConfig(clip_frames=args.clip_frames, overlap=values["overlap"],
                            pns_alpha=values["pns_alpha"], dsg_beta=values["dsg_beta"], order=order)
        seam_drop = default_seam_drop(args.extend, order, values["overlap"], args.clip_frames) \
            if args.seam_drop is None else args.seam_drop
        video = LongVideoConfig(num_frames=args.frames, extend=args.extend, vidrd=vidrd, seam_drop=seam_drop,
                                decode_chunk=args.decode_chunk,
                                context_noise=run_defaults.context_noise(args) if args.extend == "context" else 0,
                                context_init=(args.context_init or DEFAULT_CONTEXT_INIT) if args.extend == "context"
                                else "fresh",
                                context_anchor=args.extend == "context" and args.context_anchor is not False,
                                context_guidance=args.extend == "context" and run_defaults.context_guidance(args),
                                history_scale=args.history_scale,
                                history_free=args.history_free or DEFAULT_HISTORY_FREE)
    except ValueError as err:
        raise LdmVideoError(str(err)) from None
    return sampling, video


@dataclass(frozen=True)
class VideoSource:
    """What a call's videos are made from and written as, beyond the sampling configs: resolved once from the flags
    (the base taken from the run, clip fps from its record) and recorded in every sidecar."""

    base: str
    base_variant: str | None
    motion: str | None
    lora: str | None
    lora_scale: float
    motion_scale: float
    vae: str | None
    negative_prompt: str
    prompt_edit: float
    frames: int  # output frames of every video
    fps: float
    crf: int
    decode_chunk: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> VideoSource:
        return cls(base=args.base, base_variant=args.base_variant, motion=args.motion, lora=args.lora,
                   lora_scale=args.lora_scale, motion_scale=args.motion_scale, vae=args.vae,
                   negative_prompt=args.negative_prompt,
                   prompt_edit=args.prompt_edit, frames=args.frames, fps=args.fps, crf=args.crf,
                   decode_chunk=args.decode_chunk)


@dataclass(frozen=True)
class Job:
    """One video of a call: its prompts over time, seed and files."""

    prompt_index: int
    schedule: PromptSchedule
    seed: int
    out: Path
    latents: Path | None


def plan_jobs(args: argparse.Namespace, num_frames: int) -> list[Job]:
    """The (prompt, seed) videos this call makes, with their output paths; LdmVideoError on bad flags."""
    if bool(args.prompt) == bool(args.prompts):
        raise LdmVideoError("give --prompt TEXT or --prompts FILE (one of them)")
    if args.prompts and args.prompt_at:
        raise LdmVideoError("--prompt-at schedules one video's prompt; it does not combine with --prompts")
    if (args.prompt_blend or args.prompt_edit is not None) and not args.prompt_at:
        raise LdmVideoError("--prompt-blend / --prompt-edit need --prompt-at (a prompt to travel to)")
    if args.prompt_edit is None:
        args.prompt_edit = DEFAULT_PROMPT_EDIT if args.prompt_at and args.extend != "freenoise" else 0.0
    if not 0.0 <= args.prompt_edit < 1.0:
        raise LdmVideoError(f"--prompt-edit must be in [0, 1), got {args.prompt_edit}")
    prompts = read_prompts(args.prompts) if args.prompts else [args.prompt]
    seeds = run_defaults.seeds(args)  # -1: a random seed, said with each video and recorded in its sidecar
    batch = len(prompts) * len(seeds) > 1
    jobs = []
    for i, prompt in enumerate(prompts):
        schedule = PromptSchedule.build(prompt, args.prompt_at, args.prompt_blend, num_frames)
        for seed in seeds:
            out = output_path(args.out, i, seed, batch)
            latents = output_path(args.save_latents, i, seed, batch) if args.save_latents else None
            jobs.append(Job(i, schedule, seed, out, latents))
    return jobs


def write_sidecar(job: Job, src: VideoSource, sampling: SamplingConfig, video: LongVideoConfig,
                  frames_per_latent: int = 1) -> Path:
    """The settings that made one video, as JSON next to it (written atomically)."""
    from ldm_video import __version__
    from ldm_video.checkpoint import atomic_write

    record = {
        "video": job.out.name, "prompt": job.schedule.prompts[0], "negative_prompt": src.negative_prompt,
        "prompt_schedule": [{"frame": f, "prompt": p} for f, p in zip(job.schedule.starts, job.schedule.prompts)],
        "prompt_blend": job.schedule.blend_clips, "prompt_edit": src.prompt_edit, "seed": job.seed, "frames": src.frames,
        "base": src.base, "base_variant": src.base_variant, "motion": src.motion, "lora": src.lora,
        "lora_scale": src.lora_scale if src.lora else None, "motion_scale": src.motion_scale, "vae": src.vae,
        "sampling": {**vars(sampling), "seed": job.seed}, "clips": video.num_clips, "extend": video.extend,
        "vidrd": vars(video.vidrd), "seam_drop": video.seam_drop, "context_noise": video.context_noise,
        "context_init": video.context_init, "context_anchor": video.context_anchor,
        "context_guidance": video.context_guidance, "history_scale": video.history_scale,
        "history_free": video.history_free if video.context_guidance else None,
        "clip_starts": video.output_starts(frames_per_latent), "fps": src.fps, "ldm_video_version": __version__,
    }
    path = sidecar_path(job.out)
    atomic_write(path, lambda p: p.write_text(json.dumps(record, indent=2)))
    return path


def sample_one(job: Job, src: VideoSource, base, model, vae, sampling: SamplingConfig, video: LongVideoConfig,
               frames_per_latent: int, progress: bool) -> None:
    """One video of the call: sampled clip by clip, streamed to its file (and latents), then its sidecar."""
    sampling = replace(sampling, seed=job.seed)
    text = PromptEmbeddings(base, job.schedule, src.negative_prompt, sampling.guidance, video, frames_per_latent,
                            model.device, model.dtype, edit=src.prompt_edit)
    sampler = VideoSampler(model=model, vae=vae, scheduler_config=dict(base.scheduler.config),
                           sampling=sampling, video=video, progress=progress)
    latent_writer = None
    if job.latents is not None:
        meta = {"prompt": job.schedule.prompts[0], "negative_prompt": src.negative_prompt, "seed": str(job.seed),
                "base": src.base, "vae_scaling_factor": str(sampler.vae_scale), "layout": "b c f h w",
                "config": json.dumps({"sampling": vars(sampling), "frames": video.num_frames,
                                      "extend": video.extend, "vidrd": vars(video.vidrd),
                                      "seam_drop": video.seam_drop})}
        latent_writer = LatentWriter(str(job.latents), (1, 4, video.num_frames, *sampler.latent_shape[3:]), meta)
    try:
        with VideoWriter(job.out, fps=src.fps, crf=src.crf) as writer:
            for chunk in sampler(text):
                writer.append(to_uint8(chunk.frames).cpu().numpy())  # (f, H, W, 3) uint8
                if latent_writer is not None:
                    latent_writer.append(chunk.latents)  # (1, 4, f, h, w)
            if writer.frames_written != src.frames:  # the frame arithmetic is the contract
                raise RuntimeError(f"wrote {writer.frames_written} frames, expected {src.frames}")
        if latent_writer is not None:
            latent_writer.close()
    except BaseException:
        if latent_writer is not None:
            latent_writer.abort()
        raise
    write_sidecar(job, src, sampling, video, frames_per_latent)


def sample_one_freenoise(job: Job, src: VideoSource, pipe, sampling: SamplingConfig, video: LongVideoConfig,
                         progress: bool) -> None:
    """One video with diffusers' FreeNoise (a prompt schedule becomes its {frame: prompt} keyframes)."""
    from ldm_video.infer.freenoise import freenoise_frames

    s = job.schedule
    prompt = s.prompts[0] if len(s.prompts) == 1 else dict(zip(s.starts, s.prompts))
    frames = freenoise_frames(pipe, prompt, src.negative_prompt, video.num_frames, sampling.height,
                              sampling.width, sampling.steps, sampling.guidance, job.seed, src.decode_chunk,
                              progress)  # (f, 3, H, W)
    with VideoWriter(job.out, fps=src.fps, crf=src.crf) as writer:
        for start in range(0, frames.shape[0], src.decode_chunk):
            writer.append(to_uint8(frames[start:start + src.decode_chunk]).cpu().numpy())
    write_sidecar(job, src, replace(sampling, seed=job.seed), video)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ldm_video import load_base

    if args.threads < 0:
        raise LdmVideoError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.motion and not Path(args.motion).exists():
        raise LdmVideoError(f"{args.motion}: no such --motion folder or file")
    run_defaults.fill_base(args)  # the --motion's base unless given; an unusable one is said before any writing
    sampling, video = build_configs(args)  # with --extend context, M is read from the --motion before any loading
    jobs = plan_jobs(args, args.frames)
    for job in jobs:  # refuse a bad --out / --save-latents before loading anything
        output_format(job.out)
        check_writable(job.out, "video")
        if job.latents is not None:
            check_writable(job.latents, "latents")
        if job.latents is not None and job.latents.suffix != ".safetensors":
            raise LdmVideoError(f"{args.save_latents}: --save-latents writes safetensors; name it *.safetensors")
    device, dtype = resolve_device(args.device, args.dtype)
    if args.lora and not Path(args.lora).exists():
        raise LdmVideoError(f"{args.lora}: no such LoRA file")
    if args.vae and not Path(args.vae).exists():
        raise LdmVideoError(f"{args.vae}: no such --vae folder")
    if args.quiet:
        hide_library_progress()
    parts = ("unet", "text_encoder", "tokenizer", "scheduler") + (() if args.vae else ("vae",))
    base = load_base(args.base, components=parts, dtype=dtype, device=device, variant=args.base_variant)
    vae = base.vae
    frames_per_latent = 1
    if args.vae:
        from ldm_video.vae import load_video_vae

        vae = load_video_vae(args.vae, base=args.base, dtype=dtype, device=device, variant=args.base_variant)
        if vae.temporal_compression != 1:  # causal 3D VAE: the U-Net makes (F - 1) / 4 + 1 latent frames
            vae.check_num_frames(args.frames, what="--frames")
            video = replace(video, num_frames=vae.latent_frames(args.frames))
            frames_per_latent = vae.temporal_compression
    model = load_video_model(base, args.motion, args.lora, args.lora_scale, args.motion_scale)
    if model.motion is not None and video.clip_frames > model.config.max_frames:
        raise LdmVideoError(f"--clip-frames {video.clip_frames} exceeds the temporal attention's max_frames "
                            f"{model.config.max_frames}")
    batch = len(jobs) > 1
    src = VideoSource.from_args(args)
    pipe = None
    if video.extend == "freenoise":
        from ldm_video.infer.freenoise import check_freenoise, freenoise_pipeline
        from ldm_video.infer.pipeline import make_scheduler

        check_freenoise(model, args.lora, args.vae)
        pipe = freenoise_pipeline(base, model, make_scheduler(sampling.scheduler, base.scheduler.config),
                                  video.clip_frames, video.vidrd.overlap, args.freenoise_split)
    for job in tqdm(jobs, desc="videos", unit="video", disable=args.quiet or not batch):
        if pipe is not None:
            sample_one_freenoise(job, src, pipe, sampling, video, progress=not args.quiet)
        else:
            sample_one(job, src, base, model, vae, sampling, video, frames_per_latent, progress=not args.quiet)
        if not args.quiet:
            print(f"wrote {job.out} ({args.frames} frames, {video.num_clips} clips{run_defaults.notes(args, job.seed)})")
    return 0
