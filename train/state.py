"""Resumable training checkpoints: everything needed to continue a run bit-for-bit, in safetensors + JSON.

`OUTPUT_DIR/checkpoints/step-0000123/` holds
- `temporal/`: the trainable weights in the `save_temporal` format (loadable by `generate --motion`),
- `optimizer.safetensors` + `optimizer.json`: the optimiser state (tensors / everything else),
- `ema.safetensors` + `ema.json` (with --ema),
- `rng-rank<r>.safetensors`: each process's torch CPU (and CUDA) RNG and its training generator,
- `state.json`, written last: step, data position (epoch, batch in epoch), LR-schedule state, config.
A checkpoint is assembled in a temporary folder and renamed into place, so a crash leaves either the
previous checkpoints or a complete new one. No pickle anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ldm_video.errors import LdmVideoError

STATE_NAME = "state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


# -- nested state dicts <-> (tensors, JSON) ------------------------------------------------------------

def flatten_state(obj: object, prefix: str = "") -> tuple[object, dict[str, torch.Tensor]]:
    """Split a nested dict / list state into a JSON-able skeleton and a flat {key: tensor} dict."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: object, path: str) -> object:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().to("cpu").clone().contiguous()
            return {"__tensor__": path}
        if isinstance(value, dict):
            if value and all(isinstance(k, int) for k in value):
                return {"__intkeys__": {str(k): walk(v, f"{path}.{k}") for k, v in value.items()}}
            return {str(k): walk(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return {"__list__": [walk(v, f"{path}.{i}") for i, v in enumerate(value)]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot store {type(value).__name__} at {path} in a checkpoint")

    return walk(obj, prefix or "state"), tensors


def unflatten_state(skeleton: object, tensors: dict[str, torch.Tensor]) -> object:
    """Inverse of `flatten_state`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__intkeys__"}:
            return {int(k): unflatten_state(v, tensors) for k, v in skeleton["__intkeys__"].items()}
        if set(skeleton) == {"__list__"}:
            return [unflatten_state(v, tensors) for v in skeleton["__list__"]]
        return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
    return skeleton


def save_state_dict(state: object, folder: Path, name: str) -> None:
    """`name.safetensors` (tensors) + `name.json` (the rest) in `folder`."""
    skeleton, tensors = flatten_state(state, name)
    save_file(tensors, str(folder / f"{name}.safetensors"))
    (folder / f"{name}.json").write_text(json.dumps(skeleton))


def load_state_dict(folder: Path, name: str) -> object:
    """Inverse of `save_state_dict`."""
    try:
        tensors = load_file(str(folder / f"{name}.safetensors"))
        skeleton = json.loads((folder / f"{name}.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise LdmVideoError(f"{folder}: unreadable checkpoint part {name} ({err})") from None
    return unflatten_state(skeleton, tensors)


# -- RNG ------------------------------------------------------------------------------------------------

def rng_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """This process's RNG states: torch CPU, every CUDA device, and the training generator."""
    state = {"torch_cpu": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda_{i}"] = s
    return state


def set_rng_state(state: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch_cpu"])
    generator.set_state(state["generator"])
    cuda = [state[k] for k in sorted((k for k in state if k.startswith("cuda_")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[:torch.cuda.device_count()])


# -- checkpoint folders ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Position:
    """Where a run is: optimiser steps done and the data position (the next batch to read)."""

    step: int
    epoch: int
    batch_in_epoch: int


def checkpoints_root(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints (those with state.json), oldest first."""
    root = checkpoints_root(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _STEP_DIR.match(p.name)) and (p / STATE_NAME).is_file()]
    return [p for _, p in sorted(found)]


def resolve_resume(resume: str | None, output_dir: str | os.PathLike) -> Path | None:
    """--resume latest -> the newest checkpoint (None when there is none yet); --resume DIR -> DIR."""
    if not resume:
        return None
    if resume == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / STATE_NAME).is_file():
        raise LdmVideoError(f"{resume}: not a complete ldm-video training checkpoint (no {STATE_NAME})")
    return path


def launcher_main_process() -> bool:
    """Before the accelerator exists (its process group must be set up by the trainer alone): the launcher's rank."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def resume_point(resume: str | None, output_dir: str | os.PathLike, main_process: bool = True) -> Path | None:
    """The one resume rule of every trainer: --resume DIR must be a checkpoint; --resume latest continues the
    newest one, or starts from scratch with a warning when there is none yet (so a job can always pass it)."""
    path = resolve_resume(resume, output_dir)
    if resume == "latest" and path is None and main_process:
        logging.getLogger("ldm_video.train").warning("--resume latest: no checkpoint in %s yet, starting from "
                                                     "scratch", checkpoints_root(output_dir))
    return path


def begin_checkpoint(output_dir: str | os.PathLike, step: int) -> Path:
    """The temporary folder a checkpoint is assembled in (main process creates it)."""
    tmp = checkpoints_root(output_dir) / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def finish_checkpoint(tmp: Path, state: dict, keep: int) -> Path:
    """Write state.json last, rename the folder into place, keep the newest `keep` checkpoints."""
    (tmp / STATE_NAME).write_text(json.dumps(state, indent=1))
    from ldm_video.files import replace_folder

    final = replace_folder(tmp, tmp.parent / f"step-{state['step']:07d}")  # the same step again: replaced
    for old in list_checkpoints(tmp.parent.parent)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_state(path: Path) -> dict:
    try:
        return json.loads((path / STATE_NAME).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise LdmVideoError(f"{path}: unreadable {STATE_NAME} ({err})") from None


# what a training run writes into OUTPUT_DIR (the latent cache of --cache-latents is not a run's own result)
RUN_FILES = ("checkpoints", "temporal_config.json", "temporal_layers.safetensors", "train_config.yaml", "train_log.jsonl",
             "validation")


def check_output_dir(output_dir: str | os.PathLike, resume: str | None, overwrite: bool,
                     run_files: tuple[str, ...] = RUN_FILES) -> tuple[str, ...]:
    """Refuse to mix two runs: an OUTPUT_DIR holding a run (any of `run_files`) needs --resume or --overwrite.
    Returns what --overwrite will delete (`clear_run`, once every other check has passed); deletes nothing."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise LdmVideoError(f"{out}: --output-dir is a file")
    from ldm_video.files import writable_folder

    writable_folder(out, "--output-dir")
    found = tuple(name for name in run_files if (out / name).exists())
    if not found or resume:
        return ()
    if not overwrite:
        raise LdmVideoError(f"{out}: holds another training run ({', '.join(found)}); continue it with --resume "
                            "latest, replace it with --overwrite, or choose another --output-dir")
    return found


def clear_run(output_dir: str | os.PathLike, names: tuple[str, ...]) -> None:
    """--overwrite: delete the earlier run's files (main process, after the new run's checks and setup)."""
    for name in names:
        path = Path(output_dir) / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
