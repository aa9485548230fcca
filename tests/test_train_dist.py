"""`accelerate launch` with two CPU processes (gloo): both train, one writes, every RNG stream is kept."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ldm_video.train.synthetic import write_test_image, write_test_video


@pytest.mark.skipif(shutil.which("accelerate") is None and not Path(sys.executable).with_name("accelerate").exists(),
                    reason="accelerate CLI not on PATH")
@pytest.mark.slow
def test_two_cpu_processes(tmp_path, tiny_base):
    data = tmp_path / "data"
    for i in range(3):
        write_test_video(data / f"c{i}.mp4", num_frames=6, height=32, width=32, seed=i)
    write_test_image(data / "still.png")
    out = tmp_path / "out"
    launcher = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "ACCELERATE_DISABLE_RICH": "1"}
    cmd = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "ldm_video", "train",
           "--base", tiny_base, "--data", str(data), "--output-dir", str(out), "--frames", "4",
           "--resolution", "32", "--max-steps", "2", "--images", "frame", "--no-progress"]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained 2 steps") == 1  # one report, from the main process
    checkpoint = out / "checkpoints" / "step-0000002"
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["num_processes"] == 2
    rng = [load_file(str(checkpoint / f"rng-rank{r}.safetensors"))["generator"] for r in (0, 1)]
    assert not torch.equal(rng[0], rng[1])  # each process draws its own noise
    weights = load_file(str(out / "temporal_layers.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert any(k.endswith("proj_out.weight") and v.abs().sum() > 0 for k, v in weights.items())
