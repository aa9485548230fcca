"""`ldm-video eval VIDEO`: temporal metrics of a long video (SPEC §7) as JSON: seam jump ratio, flicker, drift per
clip, and drift per segment with the start-end contrast of the first and last 15 % (FramePack's measure).

Seams are where the clips of `ldm-video generate` meet (VidRD, Gu et al., arXiv 2309.03549): generate records
them in the video's sidecar (`video.json`), which eval reads; --clip-frames / --seam-drop describe a video that
has none (the first clip has --clip-frames frames, every later clip adds --clip-frames minus --seam-drop).
"""

from __future__ import annotations

import argparse
import json

from ldm_video.errors import LdmVideoError
from ldm_video.infer.metrics import video_metrics
from ldm_video.infer.run_defaults import FALLBACK_CLIP_FRAMES
from ldm_video.infer.video_io import read_video, recorded_clip_starts
from ldm_video.infer.vidrd import DEFAULT_REUSE_ORDER, default_seam_drop

# without a sidecar: generate's default layout (clips of 8 whose later clips leave out the first 4: the frames given
# again in --extend context, or VidRD's forward prompt frames), from generate's own defaults
DEFAULT_CLIP_FRAMES = FALLBACK_CLIP_FRAMES
DEFAULT_SEAM_DROP = default_seam_drop("vidrd", DEFAULT_REUSE_ORDER, DEFAULT_CLIP_FRAMES // 2, DEFAULT_CLIP_FRAMES)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", metavar="VIDEO", help="an mp4 / gif (anything PyAV reads) or a folder of PNG frames")
    parser.add_argument("--clip-frames", type=int, default=None,
                        help="frames of the first clip; seams come after it (default: as recorded in the video's "
                             f"sidecar VIDEO.json from generate, else {DEFAULT_CLIP_FRAMES})")
    parser.add_argument("--seam-drop", type=int, default=None,
                        help="frames left out at the start of every later clip, as generate did; each later clip "
                             "then adds clip-frames minus seam-drop frames (default: as recorded in the sidecar, "
                             f"else {DEFAULT_SEAM_DROP})")


def run(args: argparse.Namespace) -> int:
    flags = args.clip_frames is not None or args.seam_drop is not None
    clip = DEFAULT_CLIP_FRAMES if args.clip_frames is None else args.clip_frames
    drop = DEFAULT_SEAM_DROP if args.seam_drop is None else args.seam_drop
    if clip < 1:
        raise LdmVideoError(f"--clip-frames must be >= 1, got {clip}")
    if not 0 <= drop < clip:
        raise LdmVideoError(f"--seam-drop must be in [0, clip-frames), got {drop} with --clip-frames {clip}")
    video = read_video(args.video)  # (f, h, w, 3) uint8
    starts, source = (None, None) if flags else recorded_clip_starts(args.video)
    report = {"video": str(args.video),
              "layout": str(source) if source else ("flags" if flags else "defaults (no sidecar)")}
    if starts is None:
        report.update({"clip_frames": clip, "seam_drop": drop})
    report.update(video_metrics(video, clip, clip - drop, starts=starts))
    print(json.dumps(report, indent=2))
    return 0
