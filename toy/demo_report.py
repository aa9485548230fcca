"""The Markdown tables of an `ldm-video demo` report (report.md): short clips by group, the long videos, and their
drift segment by segment and start against end (FramePack's first-vs-last 15 % contrast)."""

from __future__ import annotations


def _fmt(pair: tuple) -> str:
    return " / ".join("n/a" if v is None else f"{v:.2f}" for v in pair)


def motion_label(motion: str) -> str:
    """How a table names following the motion: 'moves right', 'orbits clockwise', ..."""
    return {"orbiting": "orbits clockwise", "pacing": "paces sideways", "bouncing": "bounces"}.get(
        motion, f"moves {motion}")


CLIP_COLUMNS = (("direction", "{label}"), ("mean_speed", "mean step px (real {speed})"),
                ("identity", "identity persists"), ("background", "background persists"))
LONG_ROWS = (("direction", "{label}"), ("seam_direction", "... on the steps across seams"),
             ("seam_jump", "seam jump ratio (1 = seamless)"), ("mean_speed", "mean step, px per frame"),
             ("present", "object present"), ("colour", "captioned colour"), ("identity", "identity persists"),
             ("background", "background persists"))


def table(report: dict) -> str:
    """Markdown: short clips by group, then the long videos; every cell is tuned / untrained."""
    world, c = report["config"]["world"], report["config"]["sampling"]
    motion, speed = world["motion"], f"{world['min_speed']:g}-{world['max_speed']:g}"
    clips = report["clips"]
    lines = [(f"Short clips ({clips['tuned']['all']['videos']} tuned / {clips['untrained']['all']['videos']} untrained, "
              f"{c['clip_frames']} frames; every cell and (n) tuned / untrained temporal layers):"), "",
             "| clips | " + " | ".join(label.format(label=motion_label(motion), speed=speed) for _, label in CLIP_COLUMNS)
             + " |",
             "|---|" + "---|" * len(CLIP_COLUMNS)]
    from ldm_video.toy.world import COLOURS

    for group in [g for g in ("held out", "seen", *COLOURS, "all") if g in clips["tuned"]]:
        n = f"{clips['tuned'][group]['videos']} / {clips['untrained'][group]['videos']}"
        name = {"held out": f"held-out shape ({world['held_out']})", "seen": "seen shapes",
                "all": "all"}.get(group, group)
        cells = [_fmt((clips["tuned"][group][k], clips["untrained"][group][k])) for k, _ in CLIP_COLUMNS]
        lines.append(f"| {name} ({n}) | " + " | ".join(cells) + " |")
    how = {"context": f"each clip continuing the previous clip's last {c['overlap']} frames, guided by them",
           "vidrd": f"VidRD, {c['reuse_order']} reuse order"}
    untrained = how["vidrd"] + " (untrained layers cannot take context frames)" if c["extend"] == "context" else ""
    lines += ["", (f"Long videos ({c['long_frames']} frames in clips of {c['clip_frames']}, {how[c['extend']]}"
                   f"{'; untrained: ' + untrained if untrained else ''}; tuned / untrained):"), "",
              "| metric | " + " | ".join(report["long"]) + " |", "|---|" + "---|" * len(report["long"])]
    for key, label in LONG_ROWS:
        cells = [_fmt((v["tuned"][key], v["untrained"][key])) for v in report["long"].values()]
        lines.append(f"| {label.format(label=motion_label(motion))} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", drift_table(report)])


DRIFT_ROWS = (("present", "object present"), ("colour", "captioned colour"), ("identity", "identity as at the start"),
              ("background", "background change, grey levels"), ("motion", "{label}"),
              ("speed", "mean step px"), ("speed_ratio", "step / first 15 %'s"))


def drift_table(report: dict) -> str:
    """Markdown: the tuned long videos segment by segment, then FramePack's start-end contrast (first vs last 15 %)
    of tuned / untrained, with the bar of `ldm_video.toy.drift.DRIFT_LIMITS`."""
    from ldm_video.toy.drift import DRIFT_LIMITS

    label = motion_label(report["config"]["world"]["motion"])
    prompts = list(report["long"])
    lines = [f"Drift of the tuned long videos, segment by segment ({' | '.join(prompts)}; each cell one video):", "",
             ("| frames | object present | captioned colour | identity as at the start | background change | "
              f"{label} | mean step px |"), "|---|---|---|---|---|---|---|"]
    segments = [report["long"][p]["tuned"]["segments"] for p in prompts]
    for rows in zip(*segments):
        cells = [" / ".join(f"{r[k]:.2f}" if k != "background" else f"{r[k]:.1f}" for r in rows)
                 for k in ("present", "colour", "identity", "background", "motion", "speed")]
        lines.append(f"| {rows[0]['start']}-{rows[0]['end'] - 1} | " + " | ".join(cells) + " |")
    lo, hi = DRIFT_LIMITS["speed_ratio"]
    bars = {"present": f">= {DRIFT_LIMITS['present']}", "colour": f">= {DRIFT_LIMITS['colour']}",
            "identity": f">= {DRIFT_LIMITS['identity']}", "background": f"<= {DRIFT_LIMITS['background']:g}",
            "motion": f">= {DRIFT_LIMITS['motion']}", "speed": "", "speed_ratio": f"{lo}-{hi}"}
    lines += ["", "Start against end (first 15 % -> last 15 % of each long video; tuned / untrained):", "",
              "| metric | bar (last 15 %) | " + " | ".join(prompts) + " |", "|---|---|" + "---|" * len(prompts)]
    for key, name in DRIFT_ROWS:
        cells = []
        for p in prompts:
            pair = []
            for kind in ("tuned", "untrained"):
                d = report["long"][p][kind]["drift"]
                first, last = d["first"][key], d["last"][key]
                pair.append(f"{last:.1f}" if key == "background" else f"{first:.2f} -> {last:.2f}")
            cells.append(" / ".join(pair))
        lines.append(f"| {name.format(label=label)} | {bars[key]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
