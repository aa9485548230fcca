"""`ldm-video eval VIDEO`: temporal metrics of a long video (SPEC §7) as JSON: seam jump ratio, flicker, drift.

Seams are where VidRD's clips meet (Gu et al., arXiv 2309.03549): the first clip has --clip-frames frames and
every later clip adds --clip-frames minus --seam-drop frames, as `ldm-video generate` writes them.
"""

from __future__ import annotations

import argparse
import json

from ldm_video.errors import LdmVideoError
from ldm_video.infer.metrics import video_metrics
from ldm_video.infer.video_io import read_video

DEFAULT_CLIP_FRAMES = 8  # same as `ldm-video generate --clip-frames`
DEFAULT_SEAM_DROP = 1  # same as `ldm-video generate --seam-drop`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", metavar="VIDEO", help="an mp4 / gif (anything PyAV reads) or a folder of PNG frames")
    parser.add_argument("--clip-frames", type=int, default=DEFAULT_CLIP_FRAMES,
                        help=f"frames of the first clip; seams come after it (default {DEFAULT_CLIP_FRAMES})")
    parser.add_argument("--seam-drop", type=int, default=DEFAULT_SEAM_DROP,
                        help="frames dropped at the start of every later clip, as given to generate; each later "
                             f"clip then adds clip-frames minus seam-drop frames (default {DEFAULT_SEAM_DROP}, "
                             "generate's default)")


def run(args: argparse.Namespace) -> int:
    if args.clip_frames < 1:
        raise LdmVideoError(f"--clip-frames must be >= 1, got {args.clip_frames}")
    if not 0 <= args.seam_drop < args.clip_frames:
        raise LdmVideoError(f"--seam-drop must be in [0, clip-frames), got {args.seam_drop}")
    video = read_video(args.video)  # (f, h, w, 3) uint8
    report = {"video": str(args.video), "clip_frames": args.clip_frames, "seam_drop": args.seam_drop}
    report.update(video_metrics(video, args.clip_frames, args.clip_frames - args.seam_drop))
    print(json.dumps(report, indent=2))
    return 0
