"""Resumable training state of `ldm-video train-vae`: optimizer moments in safetensors, counters in JSON.

A checkpoint folder is a loadable video-VAE folder (`video_vae.json` + `video_vae.safetensors`) plus
`optimizer.safetensors` and `train_state.json`, all written together by one atomic folder rename.
No pickle anywhere: the optimizer's per-parameter tensors are flattened to `state.<i>.<name>` keys.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ldm_video.errors import LdmVideoError

OPTIMIZER_NAME = "optimizer.safetensors"
STATE_NAME = "train_state.json"
CHECKPOINT_DIR = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Flatten an optimizer's state to named tensors plus its JSON-able param-group hyper-parameters."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, state in sd["state"].items():
        for name, value in state.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{name}"] = t.detach().to("cpu").contiguous()
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, json.loads(json.dumps(groups, default=float))


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path, groups: list[dict]) -> None:
    """Restore what `optimizer_tensors` wrote; LdmVideoError when it does not fit this optimizer."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise LdmVideoError(f"{path}: unreadable optimizer state ({err})") from None
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    current = optimizer.state_dict()
    if [len(g["params"]) for g in groups] != [len(g["params"]) for g in current["param_groups"]]:
        raise LdmVideoError(f"{path}: optimizer state is for another set of trainable parameters "
                            f"(was --train-decoder changed?)")
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as err:
        raise LdmVideoError(f"{path}: optimizer state does not fit ({err})") from None


def checkpoint_extra(optimizer: torch.optim.Optimizer, counters: dict) -> dict:
    """The `extra` files of a checkpoint folder (see `ldm_video.vae.checkpoint.save_folder`)."""
    tensors, groups = optimizer_tensors(optimizer)

    def write_state(path: Path) -> None:
        path.write_text(json.dumps({**counters, "param_groups": groups}, indent=2, sort_keys=True))

    return {OPTIMIZER_NAME: lambda path: save_file(tensors, str(path)), STATE_NAME: write_state}


def read_counters(folder: Path) -> dict:
    """The JSON counters (step, epoch, batch, run config, param groups) of a checkpoint folder."""
    try:
        return json.loads((folder / STATE_NAME).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise LdmVideoError(f"{folder}: not a train-vae checkpoint ({STATE_NAME}: {err})") from None


def step_folder(output: str | os.PathLike, step: int) -> Path:
    return Path(output) / CHECKPOINT_DIR / f"step-{step:07d}"


def latest_checkpoint(output: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest step under `output/checkpoints`, or None."""
    root = Path(output) / CHECKPOINT_DIR
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()
             and (p / STATE_NAME).is_file()]
    return max(found)[1] if found else None


def prune_checkpoints(output: str | os.PathLike, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    import shutil

    root = Path(output) / CHECKPOINT_DIR
    found = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)))
    for _, path in found[:-keep] if keep > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
