"""Streaming: peak tensor memory of a 256-frame video <= 1.1x that of a 32-frame one (tiny model).

Measured with `TensorMemoryTracker`: every CPU tensor storage that torch operators create during sampling,
decoding and writing (activations, latents, noise, DSG store, decoded frames), live bytes at their peak;
model weights (loaded before) are not counted, nor PyAV's / x264's own buffers.
"""

from __future__ import annotations

import pytest
import torch

from ldm_video import inflate_unet, load_base
from ldm_video.infer.pipeline import LongVideoConfig, SamplingConfig, VideoSampler, encode_prompt
from ldm_video.infer.video_io import VideoWriter
from ldm_video.infer.vidrd import VidRDConfig
from ldm_video.memory import TensorMemoryTracker
from ldm_video.video_file import to_uint8


def peak_bytes(base, model, text, num_frames: int, out) -> int:
    sampling = SamplingConfig(steps=2, guidance=2.0, height=16, width=16)
    video = LongVideoConfig(num_frames=num_frames, vidrd=VidRDConfig(clip_frames=8, overlap=4), decode_chunk=4)
    sampler = VideoSampler(model, base.vae, dict(base.scheduler.config), sampling, video, progress=False)
    if not isinstance(text, torch.Tensor):
        text = text(video)  # per-clip embeddings built for this video
    with TensorMemoryTracker() as tracker, VideoWriter(out) as writer:
        for chunk in sampler(text):
            writer.append(to_uint8(chunk.frames).numpy())
    assert writer.frames_written == num_frames
    return tracker.peak


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_frames(tiny_base, tmp_path):
    base = load_base(tiny_base)
    model = inflate_unet(base.unet).eval()
    text = encode_prompt(base.tokenizer, base.text_encoder, "x", "", 2.0, "cpu", torch.float32)
    short = peak_bytes(base, model, text, 32, tmp_path / "short.mp4")
    long = peak_bytes(base, model, text, 256, tmp_path / "long.mp4")
    assert short > 0
    assert long <= 1.1 * short, (short, long)


@pytest.mark.slow
def test_peak_memory_is_flat_with_prompt_travel(tiny_base, tmp_path):
    """A prompt switch, blending and prompt editing: still <= 1.1x from 32 to 256 frames."""
    from ldm_video.infer.pipeline import PromptEmbeddings
    from ldm_video.infer.prompts import PromptSchedule

    base = load_base(tiny_base)
    model = inflate_unet(base.unet).eval()

    def text(video):
        schedule = PromptSchedule.build("x", [("16", "y z")], 2, video.num_frames)
        return PromptEmbeddings(base, schedule, "", 2.0, video, 1, "cpu", torch.float32, edit=0.5)

    short = peak_bytes(base, model, text, 32, tmp_path / "short.mp4")
    long = peak_bytes(base, model, text, 256, tmp_path / "long.mp4")
    assert long <= 1.1 * short, (short, long)


def test_tracker_sees_growth():
    """The measurement can fail: holding every chunk makes the peak grow with their number."""
    held = []
    with TensorMemoryTracker() as tracker:
        for _ in range(8):
            held.append(torch.zeros(1000))
    assert tracker.peak >= 8 * 4000
