"""`ldm-video toy`: the toy world's commands — write a toy data folder, score a video, pretrain the toy base."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from ldm_video.errors import LdmVideoError
from ldm_video.flags import add_deprecated, add_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ldm_video.toy.world import ALL_SHAPES

    sub = parser.add_subparsers(dest="toy_command", metavar="TOY_COMMAND", required=True)

    p = sub.add_parser("world", help="write toy videos (mp4) with captions as a training data folder",
                       description="Write procedurally drawn toy videos (a coloured shape moving on a plain "
                                   "background, 64x64 px) with captions, in the training data-folder format.")
    p.add_argument("out", help="folder to write (created if missing)")
    p.add_argument("--count", type=int, default=64, help="number of videos (default 64)")
    p.add_argument("--frames", type=int, default=16, help="frames per video (default 16)")
    p.add_argument("--fps", type=int, default=8, help="frame rate written into the mp4s (default 8)")
    p.add_argument("--seed", type=int, default=0, help="world seed; the same seed writes the same videos")
    p.add_argument("--captions", choices=("txt", "jsonl"), default="txt",
                   help="same-stem .txt sidecars (default) or one metadata.jsonl with file_name and text")
    p.add_argument("--shapes", nargs="+", choices=ALL_SHAPES, default=None, metavar="SHAPE",
                   help="draw only these shapes (default: circle square triangle; diamond and bar only when named)")
    p.set_defaults(_toy=_run_world)

    p = sub.add_parser("metrics", help="score a video against a toy caption (prints JSON)",
                       description="Find the captioned object in every frame by colour segmentation and print "
                                   "presence, colour/shape accuracy, identity persistence, motion direction, "
                                   "speed consistency and (with --clip-frames) the seam jump ratio as JSON.")
    p.add_argument("video", help="video file (mp4, webm, gif, ...)")
    p.add_argument("--caption", default=None,
                   help="toy caption, e.g. 'a red circle moving left' (default: the video's same-stem .txt)")
    p.add_argument("--clip-frames", type=int, default=None,
                   help="frames of the first clip of a long video (as given to generate); measures the seam "
                        "jump ratio of the object's centroid track (default: no seams)")
    p.add_argument("--seam-drop", type=int, default=0,
                   help="frames dropped at the start of every later clip, as given to generate; each later "
                        "clip then adds clip-frames minus seam-drop frames (default 0)")
    p.set_defaults(_toy=_run_metrics)

    p = sub.add_parser("pretrain", help="train the toy base image model (SD 2.1 layout) on single toy frames",
                       description="Train the tiny toy text-to-image model (AutoencoderKL + UNet2DConditionModel "
                                   "+ frozen random CLIP text encoder, SD 2.1 layout) on single frames of the "
                                   "toy world, write it as a diffusers StableDiffusionPipeline folder with "
                                   "recipe.yaml, and report how often samples show the captioned colour and shape.")
    out = p.add_mutually_exclusive_group(required=True)  # one of the two spellings
    out.add_argument("--output-dir", dest="out",
                     help="output folder (written beside it under a temporary name, moved into place when done)")
    add_deprecated(out, "--out", "--output-dir", "out")
    p.add_argument("--recipe", default=None, help="recipe.yaml to start from (default: the built-in recipe)")
    p.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    p.add_argument("--vae-steps", type=int, default=None, help="override the recipe's VAE steps")
    p.add_argument("--unet-steps", type=int, default=None, help="override the recipe's U-Net steps")
    p.add_argument("--shapes", nargs="+", choices=ALL_SHAPES, default=None, metavar="SHAPE",
                   help="override the recipe's shapes: the base learns to draw these (default: circle square "
                        "triangle; diamond and bar for a demo trained on more shapes, `demo --shapes`)")
    p.add_argument("--reuse-vae", default=None, metavar="BASE",
                   help="load the VAE and text encoder of an earlier toy base whose recipe has the same seed, "
                        "text and VAE fields instead of retraining them (stage 2 runs as from scratch)")
    add_threads(p, default=1)
    p.add_argument("--no-eval", action="store_true", help="skip the sampling accuracy check at the end")
    p.set_defaults(_toy=_run_pretrain)


def run(args: argparse.Namespace) -> int:
    return args._toy(args)


def _run_world(args: argparse.Namespace) -> int:
    from ldm_video.toy.world import WorldConfig, canonical_shapes, write_folder

    if args.count < 1 or args.frames < 2 or args.fps < 1:
        raise LdmVideoError("--count must be >= 1, --frames >= 2 and --fps >= 1")
    config = WorldConfig(shapes=canonical_shapes(args.shapes)) if args.shapes else WorldConfig()
    out = write_folder(args.out, args.count, args.frames, args.seed, args.fps, args.captions, config=config)
    print(f"wrote {args.count} toy videos of {args.frames} frames to {out}")
    return 0


def _run_metrics(args: argparse.Namespace) -> int:
    from ldm_video.infer.video_io import read_video
    from ldm_video.toy.metrics import score_video
    from ldm_video.toy.world import parse_caption

    caption = args.caption
    if caption is None:
        sidecar = Path(args.video).with_suffix(".txt")
        if not sidecar.is_file():
            raise LdmVideoError(f"{args.video}: no --caption given and no caption file {sidecar}")
        caption = sidecar.read_text().strip()
    try:
        parse_caption(caption)
    except ValueError as err:
        raise LdmVideoError(str(err)) from None
    if args.clip_frames is not None and not 0 <= args.seam_drop < args.clip_frames:
        raise LdmVideoError("--clip-frames must be >= 1 and --seam-drop in [0, clip-frames)")
    frames = read_video(args.video)
    scores = score_video(frames, caption, args.clip_frames, args.seam_drop)
    print(json.dumps({"video": str(args.video), "caption": caption, **scores.as_dict()}, indent=1))
    return 0


def _run_pretrain(args: argparse.Namespace) -> int:
    import torch

    from ldm_video.toy.pretrain import ToyRecipe, pretrain

    torch.set_num_threads(args.threads)
    try:
        recipe = ToyRecipe.load(args.recipe) if args.recipe else ToyRecipe()
    except (OSError, ValueError, TypeError) as err:
        raise LdmVideoError(f"{args.recipe}: not a toy recipe ({err})") from None
    overrides = {"seed": args.seed, "vae_steps": args.vae_steps, "unet_steps": args.unet_steps,
                 "shapes": tuple(args.shapes) if args.shapes else None}  # the recipe puts them in order
    recipe = replace(recipe, **{k: v for k, v in overrides.items() if v is not None})
    if recipe.vae_steps < 1 or recipe.unet_steps < 1:
        raise LdmVideoError("--vae-steps and --unet-steps must be >= 1")
    report = pretrain(args.out, recipe, evaluate_after=not args.no_eval, reuse_vae=args.reuse_vae)
    print(json.dumps(report, indent=1))
    return 0
