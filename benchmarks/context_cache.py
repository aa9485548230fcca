"""What block-causal given frames save at Stable Diffusion 2.1's size: U-Net seconds per new frame of a long video,
`--extend context` with its given frames cached once per clip (`train --context-causal`) or run at every step,
against diffusers' FreeNoise (`AnimateDiffPipeline.enable_free_noise`) on the same U-Net and motion modules.

The toy world's model is so small that a call's fixed cost outweighs its arithmetic, which favours FreeNoise's one
call over every frame; at SD 2.1's size the arithmetic dominates. Random SD 2.1-shaped weights (nothing is
downloaded); each kind of U-Net call is timed interleaved (median of --repeats) on classifier-free guidance's
batch of 2, then per new frame at --steps denoising steps:

    context, cached:    (one call on the M given frames + steps x a call on the N - M new frames) / (N - M)
    context, uncached:  steps x a call on all N frames under the block-causal mask / (N - M)
    FreeNoise:          steps x a call on F frames (context windows of N frames, N - M apart) / F, and at a long
                        video's windows: steps x (call on F frames - call on N frames) / (F - N), what each further
                        N - M frames add (its spatial layers run once per frame, its motion modules once per window,
                        (F - N) / (N - M) + 1 windows; at F = 16 it ran fewer windows per frame than a long video)

and with history guidance (generate's default for such layers), whose unconditional row goes without the given
frames: one row with them (all N, or the N - M new ones against the cache) plus one row without them, either all N
frames with the given ones noised (`--history-free noised`) or the N - M new frames alone (`dropped`). The sampler
runs the two rows in one call where their frames differ (`VideoUNet.forward_clips`: the spatial layers on both rows'
frames at once), timed so and, for comparison, as two calls. The dropped forms' last steps, no noisier than the given
frames (timestep <= --context-noise), run both rows on all N frames (or all N against the cache), as the sampler does
(1 step of 20 at the default noise 50 with DDIM).

    python benchmarks/context_cache.py --size 128 --steps 20 --threads 1
    python benchmarks/context_cache.py --size 512 --calls guidance --repeats 2 --threads 2   # SD 2.1 base's size
    python benchmarks/context_cache.py --size 512 --calls dropped --repeats 2 --threads 2    # generate's default
    python benchmarks/context_cache.py --size 256 --freenoise-scan 8,16,24,32 --repeats 1 --threads 2
    python benchmarks/context_cache.py --size 512 --calls dropped --device cuda --dtype fp16 --repeats 5   # a GPU
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch


def timed(fn, cuda: bool = False) -> float:
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.no_grad():
        fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _build(args, dtype: torch.dtype, n: int, m: int, f: int, h: int) -> tuple[dict, object, torch.Tensor]:
    """The three SD 2.1-shaped U-Nets, their inputs, and the U-Net calls to time by name (those --calls keeps)."""
    from diffusers import AnimateDiffPipeline, DDIMScheduler, UNet2DConditionModel

    from ldm_video import VideoUNetConfig, inflate_unet
    from ldm_video.sd2_configs import shipped_config
    from ldm_video.temporal import VIDEO_CLASSES
    from ldm_video.video_unet import VideoClip

    torch.manual_seed(0)
    ours = inflate_unet(UNet2DConditionModel(**shipped_config("unet")).eval(),
                        VideoUNetConfig(motion_norm="per-frame", context_causal=True, max_frames=max(32, f)))
    # full attention with all-frames norm, as diffusers runs a module (history guidance's rows on such layers)
    spare = inflate_unet(UNet2DConditionModel(**shipped_config("unet")).eval(), VideoUNetConfig(max_frames=max(32, f)))
    # FreeNoise's UNetMotionModel is built from a U-Net of its own (diffusers copies it in), so that `spare` keeps its
    # temporal layers: handing over `spare.remove_temporal_layers()` would leave it an image model
    pipe = AnimateDiffPipeline(vae=None, text_encoder=None, tokenizer=None,
                               unet=UNet2DConditionModel(**shipped_config("unet")).eval(), motion_adapter=spare.motion,
                               scheduler=DDIMScheduler())
    assert any(type(block) in VIDEO_CLASSES.values() for block in spare.unet.modules()), "spare lost its temporal layers"
    pipe.enable_free_noise(context_length=n, context_stride=n - m)
    ours, spare, pipe.unet = ours.to(dtype), spare.to(dtype), pipe.unet.to(dtype)
    text = torch.randn(2, 77, 1024, dtype=dtype)  # [negative, prompt]
    if args.freenoise_scan:  # needs no context caches
        return {}, pipe, text
    clip = torch.randn(2, 4, n, h, h, dtype=dtype)
    given = torch.zeros(2, n, dtype=torch.bool)
    given[:, :m] = True
    t = torch.full((2, n), 500)
    t[:, :m] = 0
    cache = ours.cache_context(clip[:, :, :m], t[:, :m], text)
    cache_one = ours.cache_context(clip[1:, :, :m], t[1:, :m], text[1:])
    long = torch.randn(2, 4, f, h, h, dtype=dtype)
    text_per_frame = text.repeat_interleave(f, dim=0)  # (2 F, 77, 1024)
    one = slice(1, 2)  # one guidance row

    calls = {
        "record M given frames": lambda: ours.cache_context(clip[:, :, :m], t[:, :m], text),
        "N - M new frames, cached": lambda: ours(clip[:, :, m:], t[:, m:], text, cache=cache),
        "N frames, masked": lambda: ours(clip, t, text, given=given),
        "FreeNoise, F frames": lambda: pipe.unet(long, 500, text_per_frame),  # text per frame, as the pipeline
        "FreeNoise, N frames (one window)": lambda: pipe.unet(long[:, :, :n], 500, text.repeat_interleave(n, dim=0)),
        "2 rows: N frames": lambda: spare(clip, t, text),
        "1 row: record M given frames": lambda: ours.cache_context(clip[one, :, :m], t[one, :m], text[one]),
        "1 row: N frames": lambda: spare(clip[one], t[one], text[one]),
        "1 row: N - M new frames, cached": lambda: ours(clip[one, :, m:], t[one, m:], text[one], cache=cache_one),
        "1 row: N - M frames": lambda: spare(clip[one, :, m:], t[one, m:], text[one]),
        # a block-causal module's rows without the given frames: the same U-Net, unmasked, no cache
        "1 row: N frames, block-causal module": lambda: ours(clip[one], t[one], text[one]),
        "1 row: N - M frames, block-causal module": lambda: ours(clip[one, :, m:], t[one, m:], text[one]),
        # history guidance as the sampler runs it: both rows in one call (VideoUNet.forward_clips)
        "dropped rows, one call: N - M frames + N frames": lambda: spare.forward_clips(
            [VideoClip(clip[:1, :, m:], t[:1, m:], text[:1]), VideoClip(clip[one], t[one], text[one])]),
        "cached, one call: N frames + N - M new frames": lambda: ours.forward_clips(
            [VideoClip(clip[:1], t[:1], text[:1]), VideoClip(clip[one, :, m:], t[one, m:], text[one], cache=cache_one)]),
        "cached dropped, one call: N - M frames + N - M new frames": lambda: ours.forward_clips(
            [VideoClip(clip[:1, :, m:], t[:1, m:], text[:1]),
             VideoClip(clip[one, :, m:], t[one, m:], text[one], cache=cache_one)]),
    }
    if args.calls == "guidance":
        unused = ("record M given frames", "N - M new frames, cached", "N frames, masked",
                  "1 row: N frames, block-causal module")  # the rows without history guidance
        calls = {k: v for k, v in calls.items() if k not in unused}
    elif args.calls == "dropped":
        keep = ("FreeNoise, F frames", "FreeNoise, N frames (one window)", "2 rows: N frames",
                "dropped rows, one call: N - M frames + N frames")
        calls = {k: v for k, v in calls.items() if k in keep}
    return calls, pipe, text


def main() -> None:
    from diffusers import DDIMScheduler

    from ldm_video.device import DTYPES
    from ldm_video.sd2_configs import shipped_config

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128, help="frame size in pixels (default 128)")
    parser.add_argument("--clip-frames", type=int, default=8, help="N: frames per context clip / FreeNoise window")
    parser.add_argument("--given", type=int, default=4, help="M: given frames per clip / window overlap")
    parser.add_argument("--freenoise-frames", type=int, default=16, help="F: frames of the FreeNoise call")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps per clip (default 20)")
    parser.add_argument("--context-noise", type=int, default=50,
                        help="timestep of the given frames (generate's default on the demo's layers: 50)")
    parser.add_argument("--calls", choices=("all", "guidance", "dropped"), default="all",
                        help="guidance: only the calls of history guidance's rows and FreeNoise's; dropped: only those "
                             "of generate's default (full attention, dropped rows) and FreeNoise's")
    parser.add_argument("--freenoise-scan", default=None, metavar="F1,F2,...",
                        help="only time FreeNoise's call on these frame counts (is its cost linear in the windows?)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help="weights and inputs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    cuda = args.device.startswith("cuda")
    n, m, f, h = args.clip_frames, args.given, args.freenoise_frames, args.size // 8
    with torch.device(args.device):  # models and inputs are made there; the timed calls run outside the context
        calls, pipe, text = _build(args, dtype, n, m, f, h)
    if args.freenoise_scan:
        with torch.device(args.device):
            scan_freenoise(pipe, [int(x) for x in args.freenoise_scan.split(",")], n, m, h, text, args.repeats, cuda)
        return

    if cuda:  # warm-up: kernel selection and the allocator's first growth stay out of the timings
        for call in calls.values():
            timed(call, cuda)
    seconds: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(args.repeats):  # interleaved
        for name, call in calls.items():
            seconds[name].append(timed(call, cuda))
    med = {k: statistics.median(v) for k, v in seconds.items()}
    new = n - m
    scheduler = DDIMScheduler.from_config(shipped_config("scheduler"))  # SD 2.1-base's, as the sampler's
    scheduler.set_timesteps(args.steps)
    last = sum(int(step) <= args.context_noise for step in scheduler.timesteps)  # steps with every row given
    drop = args.steps - last
    rows = {  # name -> U-Net seconds per new frame, from the calls timed
        "context, given frames cached (train --context-causal)":
            lambda: (med["record M given frames"] + args.steps * med["N - M new frames, cached"]) / new,
        "context, given frames run at every step": lambda: args.steps * med["N frames, masked"] / new,
        "history guidance, noised: both rows all N frames (one call)":
            lambda: args.steps * med["2 rows: N frames"] / new,
        "history guidance, dropped: N - M frames + N frames, one call":
            lambda: (drop * med["dropped rows, one call: N - M frames + N frames"]
                     + last * med["2 rows: N frames"]) / new,
        "history guidance, dropped, the same rows in two calls":
            lambda: (drop * (med["1 row: N frames"] + med["1 row: N - M frames"]) + last * med["2 rows: N frames"])
            / new,
        "history guidance, cached (--context-causal), noised: N frames + N - M cached, one call":
            lambda: (med["1 row: record M given frames"]
                     + args.steps * med["cached, one call: N frames + N - M new frames"]) / new,
        "history guidance, cached (--context-causal), dropped: N - M frames + N - M cached, one call":
            lambda: (med["1 row: record M given frames"]
                     + drop * med["cached dropped, one call: N - M frames + N - M new frames"]
                     + last * med["cached, one call: N frames + N - M new frames"]) / new,
        "history guidance, cached, dropped, the same rows in two calls":
            lambda: (med["1 row: record M given frames"]
                     + drop * (med["1 row: N - M new frames, cached"] + med["1 row: N - M frames, block-causal module"])
                     + last * med["cached, one call: N frames + N - M new frames"]) / new,
        "FreeNoise (diffusers), F frames": lambda: args.steps * med["FreeNoise, F frames"] / f,
    }
    per_frame = {}
    for name, value in rows.items():
        try:
            per_frame[name] = value()
        except KeyError:  # a call left out by --calls
            pass
    long_video = args.steps * (med["FreeNoise, F frames"] - med["FreeNoise, N frames (one window)"]) / (f - n)
    where = (f"{torch.cuda.get_device_name()}, {args.dtype}" if args.device.startswith("cuda")
             else f"{args.threads} thread(s), {platform.processor() or platform.machine()}, {args.dtype}")
    print(f"SD 2.1-shaped U-Net, {args.size} px, N={n}, M={m}, F={f}, {args.steps} steps, guidance batch 2, "
          f"{where}, torch {torch.__version__}; "
          f"the dropped forms' last {last} step(s) of {args.steps} with every row given (timestep <= "
          f"{args.context_noise})")
    print("\n| U-Net call | median s | runs |\n|---|---|---|")
    for name, values in seconds.items():
        print(f"| {name} | {med[name]:.4f} | {', '.join(f'{v:.4f}' for v in values)} |")
    free = per_frame["FreeNoise (diffusers), F frames"]
    print(f"\n| method | U-Net s per new frame | x FreeNoise, F frames | x FreeNoise, a long video's windows "
          f"({long_video:.4f} s) |\n|---|---|---|---|")
    for name, value in per_frame.items():
        print(f"| {name} | {value:.4f} | {value / free:.2f} | {value / long_video:.2f} |")


def scan_freenoise(pipe, lengths: list[int], n: int, m: int, h: int, text: torch.Tensor, repeats: int,
                   cuda: bool = False) -> None:
    """FreeNoise's U-Net call on each frame count (interleaved, median of `repeats`): seconds, windows, and what
    the frames since the previous count cost each."""
    seconds: dict[int, list[float]] = {f: [] for f in lengths}
    for _ in range(repeats):
        for f in lengths:
            x = torch.randn(2, 4, f, h, h, dtype=text.dtype)
            seconds[f].append(timed(lambda x=x, f=f: pipe.unet(x, 500, text.repeat_interleave(f, dim=0)), cuda))
    print("\n| frames | windows | median s | s per frame | s per frame since the previous |\n|---|---|---|---|---|")
    previous = None
    for f in lengths:
        med = statistics.median(seconds[f])
        step = "" if previous is None else f"{(med - previous[1]) / (f - previous[0]):.4f}"
        print(f"| {f} | {(f - n) // (n - m) + 1} | {med:.4f} | {med / f:.4f} | {step} |")
        previous = (f, med)


if __name__ == "__main__":
    main()
