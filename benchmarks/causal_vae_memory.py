"""Peak memory of the causal VAE's decode, chunked (conv cache) vs one-shot, at 33 and 129 frames (CPU).

Measured as the peak of bytes held by CPU tensors allocated during the decode, from the torch profiler's
memory events (activations, conv cache and the chunk being yielded; the caller drops each chunk, as
`generate` does once its frames are written). Tiny random SD-shaped VAE (block_out_channels 32,32,64,64).

    python benchmarks/causal_vae_memory.py --size 32
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile


def peak_decode_bytes(model, latent_frames: int, size: int, chunk: int | None) -> int:
    z = torch.randn(1, 4, latent_frames, size // 8, size // 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for part in model.decode_chunks(z, chunk_frames=chunk or latent_frames):
            del part
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    total = peak = 0
    for e in events:
        total += e.nbytes()
        peak = max(peak, total)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=32, help="frame height and width in pixels")
    parser.add_argument("--chunk", type=int, default=2, help="latent frames per decode chunk")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from diffusers import AutoencoderKL

    from ldm_video.testing import tiny_vae_config
    from ldm_video.vae import CausalVAE

    torch.manual_seed(0)
    model = CausalVAE(AutoencoderKL(**tiny_vae_config())).eval()
    print("| mode | 33 frames | 129 frames | ratio |\n|---|---|---|---|")
    for name, chunk in ((f"chunked ({args.chunk} latent frames)", args.chunk), ("one-shot", None)):
        a, b = (peak_decode_bytes(model, n, args.size, chunk) for n in (9, 33))
        print(f"| {name} | {a / 2**20:.1f} MiB | {b / 2**20:.1f} MiB | {b / a:.3f} |")


if __name__ == "__main__":
    main()
