"""The `ldm-video` command line: one sub-command per module, listed in an explicit registry."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from ldm_video.errors import LdmVideoError

# sub-command -> (module that defines `add_arguments(parser)` and `run(args) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("ldm_video.info", "print versions, device, attention backend and installed extras"),
    "demo": ("ldm_video.toy.demo", "the whole job on a CPU: fine-tune the toy base, generate a long video, export, score"),
    "data": ("ldm_video.train.data_cmd", "data preview: the clips the trainer would sample, as PNGs and preview.json"),
    "prepare": ("ldm_video.train.prepare_cmd", "encode a video folder into a latent cache for training"),
    "train": ("ldm_video.train.train_cmd", "fine-tune temporal layers on a folder of videos and images"),
    "plan": ("ldm_video.train.plan_cmd", "estimate the peak GPU memory of a training configuration"),
    "generate": ("ldm_video.infer.generate", "text-to-video clips and long videos (VidRD), streamed to mp4/gif/PNGs"),
    "eval": ("ldm_video.infer.eval", "temporal metrics of a video as JSON: seam jump ratio, flicker, drift"),
    "export": ("ldm_video.export", "export temporal layers / LoRA as MotionAdapter, diffusers or kohya files"),
    "train-vae": ("ldm_video.vae.train_vae", "fine-tune a temporal-aware VAE decoder or a 3D causal VAE on videos"),
    "eval-vae": ("ldm_video.vae.eval_vae", "PSNR / SSIM / flicker of a video VAE next to the 2D SD VAE"),
    "toy": ("ldm_video.toy.cli", "toy world: write toy videos, score a video against its caption, pretrain the toy base"),
}


# `ldm-video --help` ends with the path of a first real fine-tune (README: "Quick start")
FIRST_RUN = """start here: look at the data, then a first real fine-tune of SD 2.1-base (one 24 GB GPU):
  ldm-video data preview --data clips/ --output-dir preview/      (the clips, captions and crops it will train on)
  ldm-video plan --config sd21-base-16x256
  ldm-video train --config sd21-base-16x256 --data clips/ --output-dir runs/first
  ldm-video generate --motion runs/first --prompt "a kite over the sea" --frames 32 --out kite.mp4
  ldm-video export --motion runs/first --format animatediff --out first-motion.safetensors"""

# third-party log lines that say nothing to a user of this tool: (logger, text in the message)
QUIET = (("transformers.utils.import_utils", "requires torchvision (not installed)"),)


def quiet_third_party() -> None:
    """Drop the log lines in QUIET (e.g. transformers' torchvision notices when diffusers pipelines are imported);
    every other warning still shows. Filters sit on the emitting loggers, so the import order does not matter."""
    import logging

    for name, text in QUIET:
        logger = logging.getLogger(name)
        if not any(getattr(f, "ldm_video_quiet", False) for f in logger.filters):
            def drop(record: logging.LogRecord, text: str = text) -> bool:
                return text not in record.getMessage()

            drop.ldm_video_quiet = True  # type: ignore[attr-defined]
            logger.addFilter(drop)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command.

    Args:
        only: fill in the flags of this sub-command alone ("" for none); the others are listed with their help
            line but their modules (and torch) are not imported, so `ldm-video --help` is quick.
    """
    parser = argparse.ArgumentParser(
        prog="ldm-video",
        description="Stable Diffusion 2.1 -> text-to-video: train temporal layers, generate long videos, export.",
        epilog=FIRST_RUN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text, description=help_text, add_help=False)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip().split("\n")[0])
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def requested_command(argv: list[str]) -> str:
    """The sub-command named on the command line ("" when there is none)."""
    return next((a for a in argv if not a.startswith("-")), "") if argv else ""


def describe_io_error(err: Exception) -> str:
    """One line for an OSError (the file and the system's reason) or a SafetensorError."""
    if isinstance(err, OSError):
        where = err.filename if err.filename is not None else ""
        reason = err.strerror or str(err) or type(err).__name__
        return f"{where}: {reason}" if where else reason
    return f"unreadable weights file ({err})"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; user errors print one line and exit 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_third_party()
    command = requested_command(argv)
    parser = build_parser(only=command if command in COMMANDS else "")
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 1
    try:
        return int(run(args) or 0)
    except LdmVideoError as err:
        print(f"ldm-video {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # the file system or a weights file said no: one line; anything else is a bug
        if not (isinstance(err, OSError) or type(err).__name__ == "SafetensorError"):
            raise
        print(f"ldm-video {args.command}: error: {describe_io_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ldm-video {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
