"""Inflate an SD 2.1-sized (865.9M-parameter) random U-Net on CPU: seconds per temporal_layers choice and
parameter counts, against diffusers' own `UNetMotionModel.from_unet2d` with an AnimateDiff-sized adapter.

    python benchmarks/inflate.py            # prints a markdown table
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel

from ldm_video import VideoUNetConfig, inflate_unet
from ldm_video.sd2_configs import shipped_config


def count(params) -> int:
    return sum(p.numel() for p in params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# inflate benchmark — {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads")
    print("| temporal_layers | spatial params | temporal params | inflate s | peer: UNetMotionModel.from_unet2d s |")
    print("|---|---|---|---|---|")
    for layers in ("attn", "conv", "attn+conv"):
        unet = UNet2DConditionModel(**shipped_config("unet"))
        spatial = count(unet.parameters())
        start = time.perf_counter()
        model = inflate_unet(unet, VideoUNetConfig(temporal_layers=layers))
        ours = time.perf_counter() - start
        temporal = count(model.trainable_parameters())
        peer = ""
        if layers == "attn":
            unet_peer = UNet2DConditionModel(**shipped_config("unet"))
            start = time.perf_counter()
            adapter = MotionAdapter(block_out_channels=(320, 640, 1280, 1280), motion_layers_per_block=2,
                                    motion_num_attention_heads=8, motion_max_seq_length=32,
                                    use_motion_mid_block=True)
            UNetMotionModel.from_unet2d(unet_peer, adapter)
            peer = f"{time.perf_counter() - start:.1f}"
            del unet_peer, adapter
        print(f"| {layers} | {spatial / 1e6:.1f}M | {temporal / 1e6:.1f}M | {ours:.1f} | {peer} |", flush=True)
        del model, unet


if __name__ == "__main__":
    main()
