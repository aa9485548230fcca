"""What each clip is asked for, and which videos one `generate` call makes.

- Prompt travel: a long video's prompt changes at given output frames (`--prompt-at FRAME TEXT`). VidRD makes the
  video clip by clip (Gu et al., 2023, §4.3), so each clip is conditioned on the prompt scheduled at its first
  new frame; with `--prompt-blend K` the text embedding moves linearly from the old prompt to the new one over
  the K clips that start at or after the switch, instead of jumping (the previous clip's noise and trajectory
  carry shape and position across, FNR + PNS + DSG).
- Batches: several prompts (`--prompts FILE`, one per line) times several seeds (`--seeds 0-7`) make one video
  each, with one loaded model; names are predictable: `OUT-p{prompt:03d}-s{seed}.mp4` next to `--out`.
Pure functions, no model here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ldm_video.errors import LdmVideoError


@dataclass(frozen=True)
class PromptSchedule:
    """Prompts by output frame: `prompts[i]` holds from frame `starts[i]` on (starts[0] == 0)."""

    starts: tuple[int, ...]
    prompts: tuple[str, ...]
    blend_clips: int = 0  # clips over which the embedding moves from one prompt to the next (0: a switch)

    def __post_init__(self) -> None:
        if not self.prompts or self.starts[0] != 0 or len(self.starts) != len(self.prompts):
            raise ValueError("a prompt schedule starts at frame 0 and has one start per prompt")
        if any(b <= a for a, b in zip(self.starts, self.starts[1:])):
            raise ValueError(f"prompt starts must increase, got {self.starts}")
        if self.blend_clips < 0:
            raise ValueError(f"blend_clips must be >= 0, got {self.blend_clips}")

    @classmethod
    def build(cls, prompt: str, at: list[tuple[str, str]] | None, blend_clips: int, num_frames: int):
        """From `--prompt` and the `--prompt-at FRAME TEXT` pairs; LdmVideoError names a bad pair."""
        entries = {0: prompt}
        for frame_text, text in at or []:
            try:
                frame = int(frame_text)
            except ValueError:
                raise LdmVideoError(f"--prompt-at {frame_text!r}: the frame must be an integer") from None
            if not 0 < frame < num_frames:
                raise LdmVideoError(f"--prompt-at {frame}: must be inside the video (1..{num_frames - 1})")
            if frame in entries:
                raise LdmVideoError(f"--prompt-at {frame}: given twice")
            if not text.strip():
                raise LdmVideoError(f"--prompt-at {frame}: empty prompt")
            entries[frame] = text
        if blend_clips < 0:
            raise LdmVideoError(f"--prompt-blend must be >= 0, got {blend_clips}")
        starts = tuple(sorted(entries))
        return cls(starts, tuple(entries[s] for s in starts), blend_clips)

    def index_at(self, frame: int) -> int:
        """Which prompt holds at output frame `frame`."""
        return max(i for i, s in enumerate(self.starts) if s <= frame)


def clip_weights(schedule: PromptSchedule, clip_starts: list[int]) -> list[dict[int, float]]:
    """Per clip, {prompt index: weight} (weights sum to 1) for clips whose first new frames are `clip_starts`.

    A clip takes the prompt scheduled at its first new frame. With blending, the k-th clip (k = 1..K) that
    starts at or after a switch mixes the old and new prompts with weight k / (K + 1) on the new one; the
    clip after those has the new prompt alone.
    """
    out = []
    for c, start in enumerate(clip_starts):
        i = schedule.index_at(start)
        if i == 0 or schedule.blend_clips == 0:
            out.append({i: 1.0})
            continue
        k = 1 + sum(1 for s in clip_starts[:c] if s >= schedule.starts[i])  # clips since the switch, this one incl.
        if k > schedule.blend_clips:
            out.append({i: 1.0})
        else:
            w = k / (schedule.blend_clips + 1)
            out.append({i - 1: 1.0 - w, i: w})
    return out


RANDOM_SEED = -1  # A1111's convention: "-1" asks for a random seed, which is then recorded
MAX_SEED = 2**32 - 1


def parse_seeds(spec: str) -> list[int]:
    """`--seeds 0-7,12,20-21` -> [0, ..., 7, 12, 20, 21] (order kept, duplicates refused); each `-1` stays -1,
    a random seed that `draw_seeds` fills in."""
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        try:
            if part == str(RANDOM_SEED):
                seeds.append(RANDOM_SEED)
            elif "-" in part:
                lo, hi = part.split("-", 1)
                first, last = int(lo), int(hi)
                if last < first or first < 0:
                    raise ValueError
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise LdmVideoError(f"--seeds {spec!r}: {part!r} is not a seed or a range like 0-7 (or -1, a random seed)") from None
    fixed = [s for s in seeds if s != RANDOM_SEED]
    if len(set(fixed)) != len(fixed):
        raise LdmVideoError(f"--seeds {spec!r}: a seed is given twice")
    if any(s < 0 or s > MAX_SEED for s in fixed):
        raise LdmVideoError(f"--seeds {spec!r}: seeds must be in 0..{MAX_SEED}, or -1 for a random one")
    return seeds


def draw_seeds(seeds: list[int], rng=None) -> list[int]:
    """`seeds` with every -1 replaced by a random seed (0..2**32-1) that none of the others is."""
    import random

    rng = rng or random.SystemRandom()
    out, taken = [], {s for s in seeds if s != RANDOM_SEED}
    for seed in seeds:
        if seed == RANDOM_SEED:
            seed = rng.randint(0, MAX_SEED)
            while seed in taken:
                seed = rng.randint(0, MAX_SEED)
            taken.add(seed)
        out.append(seed)
    return out


def read_prompts(path: str) -> list[str]:
    """One prompt per line; blank lines and lines starting with # are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise LdmVideoError(f"{path}: cannot read --prompts file ({getattr(err, 'strerror', None) or err})") from None
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise LdmVideoError(f"{path}: --prompts file has no prompts (one per line)")
    return prompts


def output_path(out: str, prompt_index: int, seed: int, batch: bool) -> Path:
    """Where one video of a batch goes: `--out` itself for a single video, else OUT-p{i:03d}-s{seed}.ext."""
    path = Path(out)
    if not batch:
        return path
    suffix = path.suffix if path.suffix in (".mp4", ".gif") else ""
    stem = path.name[: -len(suffix)] if suffix else path.name
    return path.with_name(f"{stem}-p{prompt_index:03d}-s{seed}{suffix}")
