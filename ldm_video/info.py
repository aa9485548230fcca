"""`ldm-video info`: versions of the stack, the device, the attention backend, and which extras are installed."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform

import torch

from ldm_video.device import default_device

STACK = ("torch", "diffusers", "transformers", "peft", "accelerate", "safetensors", "einops", "av")
EXTRAS = {"xformers": "cuda", "bitsandbytes": "cuda", "decord": "decord", "tensorboard": "tensorboard", "lpips": "lpips"}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def attention_backend() -> str:
    """The attention kernel that temporal and spatial attention use by default."""
    if hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        return "sdpa (torch.nn.functional.scaled_dot_product_attention)"
    return "math (diffusers AttnProcessor)"


def collect() -> dict:
    """Everything `info` reports, as a JSON-able dict."""
    device = default_device()
    report = {
        "ldm-video": _version("ldm-video"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(name) for name in STACK},
        "device": device,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "attention_backend": attention_backend(),
        "xformers_available": importlib.util.find_spec("xformers") is not None,
        "extras": {name: {"extra": extra, "installed": importlib.util.find_spec(name) is not None}
                   for name, extra in EXTRAS.items()},
    }
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"ldm-video {report['ldm-video']}  (python {report['python']}, {report['platform']})")
    for name, version in report["versions"].items():
        print(f"  {name:<13} {version or 'not installed'}")
    gpu = f" ({report['gpu']}, CUDA {report['cuda']})" if report["gpu"] else ""
    print(f"  device        {report['device']}{gpu}")
    print(f"  attention     {report['attention_backend']}; xformers "
          f"{'available (ask with --attention xformers)' if report['xformers_available'] else 'not installed'}")
    for name, extra in report["extras"].items():
        state = "installed" if extra["installed"] else f"not installed (pip install 'ldm-video[{extra['extra']}]')"
        if extra["extra"] in ("tensorboard", "lpips"):
            state = "installed" if extra["installed"] else f"not installed (pip install {name})"
        print(f"  {name:<13} {state}")
    return 0
