"""By-hand check: full-size SD 2.1 single files (random weights, original layout) load offline and generate.

Builds SD 2.1's U-Net, VAE and text encoder from the configs the package ships (random weights, fp16 on disk,
OpenCLIP's unused 24th text block included as in Stability's files), writes `v2-1_512-random.safetensors` and
`v2-1_768-random.safetensors` (the variant rule reads "512" / "768" from the names), then runs
`ldm-video generate --base FILE` on each (2 frames, 64 px, 1 step) and compares the loaded weights with the
ones written. Needs ~12 GB RAM and ~6 GB disk; about 3 minutes on 2 CPU cores.

    python benchmarks/single_file_full_size.py --work /tmp/sd21-single
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch


def main() -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from ldm_video import load_base
    from ldm_video.cli import main as cli
    from ldm_video.ldm_layout import ldm_state, save_ldm_state
    from ldm_video.single_file import SD2_DIR

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="/tmp/sd21-single", help="folder for the two checkpoint files")
    args = parser.parse_args()
    work = Path(args.work)
    torch.manual_seed(0)
    for variant, name, prediction in (("2.1-base", "v2-1_512-random.safetensors", "epsilon"),
                                      ("2.1-768-v", "v2-1_768-random.safetensors", "v_prediction")):
        folder = SD2_DIR / variant
        t0 = time.time()
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder, subfolder="unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder, subfolder="vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder, subfolder="text_encoder"))
        path = save_ldm_state(ldm_state(unet, vae, text, extra_text_layer=True), work / name, dtype=torch.float16)
        print(f"{name}: {path.stat().st_size / 2**30:.2f} GiB written in {time.time() - t0:.0f} s "
              f"(U-Net {sum(p.numel() for p in unet.parameters()) / 1e6:.1f}M params)", flush=True)
        t0 = time.time()
        base = load_base(str(path), dtype=torch.float16)
        assert base.prediction_type == prediction, base.prediction_type
        for part, ours in (("unet", unet), ("vae", vae), ("text_encoder", text)):
            theirs = getattr(base, part).state_dict()
            mine = ours.state_dict()
            assert set(theirs) == set(mine), part
            assert all(torch.equal(theirs[k], mine[k].half()) for k in mine), part
        print(f"  load_base: {prediction}, every tensor equal to the written one, {time.time() - t0:.0f} s", flush=True)
        del base, unet, vae, text
        t0 = time.time()
        code = cli(["generate", "--base", str(path), "--prompt", "a red circle moving right", "--frames", "2",
                    "--clip-frames", "2", "--steps", "1", "--height", "64", "--width", "64", "--no-progress",
                    "--out", str(work / f"{Path(name).stem}.mp4")])
        assert code == 0, code
        print(f"  generate --base {name}: exit {code}, {time.time() - t0:.0f} s", flush=True)
        path.unlink()
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB")


if __name__ == "__main__":
    main()
