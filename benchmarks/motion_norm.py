"""Does the motion module's GroupNorm semantics matter? diffusers (all frames) vs original AnimateDiff (per frame).

diffusers' `AnimateDiffTransformer3D` normalises a motion module's input over all frames of a clip; the
original AnimateDiff code, A1111's sd-webui-animatediff and ComfyUI-AnimateDiff-Evolved normalise each frame
alone. An exported module therefore runs as another function in those tools. This measures by how much, on a
trained toy motion module (the demo's `motion/`, trained all-frames):

1. U-Net output: mean |eps_all - eps_per_frame| against the motion effect mean |eps_all - eps_image| (the image
   model run per frame, temporal layers off), on noised toy clips of the trained motion at t = 250, 500, 750;
2. the toy ground truth of sampled clips (every colour x shape, same seeds) under each semantics.

    python benchmarks/motion_norm.py --motion DEMO_OUT/motion --held-out triangle [--direction right] [--seeds 2]
"""

from __future__ import annotations

import argparse
import time

import torch


def output_gap(gen, motion: str, clips: int = 8, frames: int = 8) -> list[dict]:
    """Per timestep: mean |all - per-frame| and mean |all - image model| of the U-Net's prediction."""
    from ldm_video.temporal import set_motion_norm
    from ldm_video.toy.world import WorldConfig, sample

    world = WorldConfig(motions=(motion,), min_speed=0.5, max_speed=1.0)
    model, vae, scale = gen.model, gen.parts.vae, gen.parts.vae.config.scaling_factor
    videos = [sample(9000 + i, frames, world) for i in range(clips)]
    rows = []
    g = torch.Generator().manual_seed(0)
    for t in (250, 500, 750):
        gap = effect = 0.0
        for v in videos:
            pixels = torch.from_numpy(v.frames).float().div(127.5).sub(1).permute(0, 3, 1, 2)  # (f, 3, H, W)
            with torch.no_grad():
                z = vae.encode(pixels).latent_dist.mean * scale  # (f, 4, h, w)
                z = z.permute(1, 0, 2, 3)[None]  # (1, 4, f, h, w)
                noisy = gen.parts.scheduler.add_noise(z, torch.randn(z.shape, generator=g), torch.tensor([t]))
                text = gen._embed(v.caption)[-1:]  # the conditional embedding
                step = torch.tensor([t])
                set_motion_norm(model.motion, "all-frames")
                a = model(noisy, step, text).sample
                set_motion_norm(model.motion, "per-frame")
                p = model(noisy, step, text).sample
                set_motion_norm(model.motion, "all-frames")
                image = torch.cat([model(noisy[:, :, i:i + 1], step, text).sample for i in range(frames)], dim=2)
            gap += (a - p).abs().mean().item() / len(videos)
            effect += (a - image).abs().mean().item() / len(videos)
        rows.append({"t": t, "all_vs_per_frame": gap, "motion_effect": effect})
    return rows


def main() -> None:
    from ldm_video.temporal import set_motion_norm
    from ldm_video.toy import TOY_BASE
    from ldm_video.toy.motion_eval import group_scores, sample_clips

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--motion", required=True, help="temporal layers trained all-frames (a demo's motion/)")
    parser.add_argument("--base", default=str(TOY_BASE), help="toy base (default: the shipped one)")
    parser.add_argument("--direction", default="right", help="the motion the layers were trained on")
    parser.add_argument("--held-out", default="triangle", help="shape held out of training")
    parser.add_argument("--seeds", type=int, default=2, help="sampling seeds per colour x shape")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from ldm_video.toy.motion_eval import ToyGenerator

    gen = ToyGenerator(args.base, args.motion)
    gen.model.eval()
    t0 = time.time()
    for row in output_gap(gen, args.direction):
        print(f"t={row['t']}: mean |all-frames - per-frame| = {row['all_vs_per_frame']:.4f}, "
              f"motion effect mean |all-frames - image model| = {row['motion_effect']:.4f} "
              f"(ratio {row['all_vs_per_frame'] / row['motion_effect']:.2f})", flush=True)
    for norm in ("all-frames", "per-frame"):
        set_motion_norm(gen.model.motion, norm)
        clips = sample_clips(gen, args.direction, args.seeds, seed_offset=500)
        groups = group_scores(clips, (args.held_out,))
        print(f"{norm:>10}: direction held out {groups['held out']['direction']:.2f}, seen "
              f"{groups['seen']['direction']:.2f}, all {groups['all']['direction']:.2f}; identity "
              f"{groups['all']['identity']:.2f}, background {groups['all']['background']:.2f} "
              f"({groups['all']['videos']} clips, {time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
