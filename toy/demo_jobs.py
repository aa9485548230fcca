"""The demo's sampling and scoring, cut into independent jobs that run on worker processes.

The toy model is so small that a U-Net call's fixed cost outweighs its arithmetic, so a second torch thread
speeds one process up by a few per cent only, while two one-thread processes run side by side at full speed
(benchmarks/RESULTS.md, "The demo in parallel processes"). Every job is a pure function of its fields: the
same seed gives the same video in whichever process runs it, and the results come back in the order of the jobs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ldm_video.errors import LdmVideoError
from ldm_video.toy.motion_eval import ClipSampling, ScoredClip
from ldm_video.toy.world import SHAPES


def default_workers() -> int:
    """The CPU cores this process may use (capped at 8: the demo has about a dozen jobs)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores))


@dataclass(frozen=True)
class ClipJob:
    """Short clips of every colour x shape for one sampling seed, scored against their captions."""

    base: str  # toy base folder
    motion: str | None  # temporal layers (a `train` output folder); None = fresh ones (the untrained model)
    world_motion: str  # the motion in the captions
    seed: int
    sampling: ClipSampling
    shapes: tuple[str, ...] = SHAPES  # the shapes clipped, every colour each

    def __call__(self) -> list[ScoredClip]:
        from ldm_video.toy.motion_eval import ToyGenerator, sample_clips

        generator = ToyGenerator(self.base, self.motion, self.sampling)
        return sample_clips(generator, self.world_motion, 1, self.sampling.clip_frames, seed_offset=self.seed,
                            shapes=self.shapes)


@dataclass(frozen=True)
class LongJob:
    """One long video made by `ldm-video generate`'s own flags, exactly as a user would run it, then scored."""

    base: str
    prompt: str
    out: Path  # the video file; generate writes its sidecar next to it
    motion: str | None  # temporal layers; None = fresh ones
    extend: str  # generate --extend
    flags: tuple[str, ...]  # generate's other flags: frames, clip length, steps, seed, ...
    reuse_order: str  # generate --reuse-order, with extend "vidrd" (the others refuse it)
    segments: int  # the drift is scored per segment of frames / segments

    def __call__(self) -> dict:
        from ldm_video.infer import generate

        args = ["--base", self.base, "--prompt", self.prompt, *self.flags, "--extend", self.extend,
                "--out", str(self.out), "--no-progress"]
        if self.extend == "vidrd":
            args += ["--reuse-order", self.reuse_order]
        if self.motion is not None:
            args += ["--motion", self.motion]
        parser = argparse.ArgumentParser(prog="ldm-video generate")
        generate.add_arguments(parser)
        if generate.run(parser.parse_args(args)) != 0:
            raise LdmVideoError(f"generating {self.out} failed (see the message above)")
        return long_scores(self.out, self.prompt, self.segments)


def long_scores(video: Path, prompt: str, segments: int) -> dict:
    """The toy scores of one generated long video (seams where its sidecar says generate put them) and its drift:
    per segment and the start-end contrast of the first and last 15 % (`ldm_video.toy.drift`)."""
    from ldm_video.infer.video_io import read_video, recorded_clip_starts
    from ldm_video.toy.drift import segment_drift, start_end_drift
    from ldm_video.toy.metrics import analyse_video, score_analyses
    from ldm_video.toy.world import parse_caption

    frames = read_video(video)  # (f, 64, 64, 3)
    starts, _ = recorded_clip_starts(video)
    analyses = analyse_video(frames)
    scores = score_analyses(analyses, *parse_caption(prompt), starts=starts).as_dict()
    return {"frames": int(frames.shape[0]), **scores,
            "drift": start_end_drift(frames, prompt, analyses=analyses),
            "segments": [s.as_dict() for s in segment_drift(frames, prompt, segments, analyses=analyses)]}


def _start_worker(progress: bool) -> None:
    """A worker: one torch thread; Ctrl-C is the parent's to handle (it stops the workers)."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    if not progress:
        from ldm_video.flags import hide_library_progress

        hide_library_progress()


def _run_indexed(item: tuple[int, Callable]) -> tuple[int, object]:
    index, job = item
    return index, job()


def run_jobs(jobs: Sequence[Callable], workers: int, progress: bool = True, desc: str = "jobs") -> list:
    """Each job's result, in the order of `jobs`. workers > 1: that many spawned processes with one torch thread
    each take the jobs in the given order (put the longest first); 1: in this process, one after another."""
    if workers <= 1 or len(jobs) <= 1:
        return [job() for job in tqdm(jobs, desc=desc, disable=not progress)]
    results: list = [None] * len(jobs)
    pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)), _start_worker, (progress,))
    try:
        done = pool.imap_unordered(_run_indexed, list(enumerate(jobs)))
        for index, result in tqdm(done, total=len(jobs), desc=desc, disable=not progress):
            results[index] = result
        pool.close()  # every job is done: the workers exit on their own
    except BaseException:
        pool.terminate()  # an error or Ctrl-C: the other jobs are stopped at once
        raise
    finally:
        pool.join()
    return results
