"""Layers import only downwards: the core (`ldm_video/`) <- `vae/` <- `infer/` <- `train/` <- the toy world and the
demo (`toy/`) <- the command line (`cli/`). And no library module imports a command module.

The VAE's own commands sit in `vae/` beside its models but above training: `train-vae` runs its job on train's
engine and data pipeline, `eval-vae` reads clips through train's data pipeline.

Walks the source with `ast` (every import, at module or function level), so the rule holds for lazy imports too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> (import name, layer); a module may import its own layer and those below
FOLDERS = {"ldm_video": ("ldm_video", 0), "vae": ("ldm_video.vae", 1), "infer": ("ldm_video.infer", 2),
           "train": ("ldm_video.train", 3), "toy": ("ldm_video.toy", 4), "cli": ("ldm_video.cli", 5)}
ABOVE_THEIR_FOLDER = {"ldm_video.vae.train_vae": 3, "ldm_video.vae.eval_vae": 3}  # see the docstring
LAYER_OF_PACKAGE = {name: layer for name, layer in FOLDERS.values()}
# modules that exist for a command's flags (`add_arguments` / `run(args)` on an argparse Namespace): library code
# must not import them (the demo, an application on top, runs `ldm-video generate` through its flags as a user
# would). `ldm_video.export` and `ldm_video.vae.train_vae` are library modules with a thin command at the end.
COMMAND_MODULES = {"ldm_video.cli", "ldm_video.info", "ldm_video.infer.generate", "ldm_video.infer.eval",
                   "ldm_video.vae.eval_vae", "ldm_video.train.train_cmd", "ldm_video.train.data_cmd",
                   "ldm_video.train.prepare_cmd", "ldm_video.train.plan_cmd", "ldm_video.toy.cli"}
APPLICATIONS = {"ldm_video.toy.demo", "ldm_video.toy.demo_jobs"}  # the demo and its sampling jobs


def modules():
    for folder, (package, _) in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield ".".join([package, *parts]), path


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from ldm_video import cli`
    return {n for n in names if n == "ldm_video" or n.startswith("ldm_video.")}


def layer(name: str) -> int:
    """The layer of an imported ldm_video name (its longest mapped package prefix)."""
    best = "ldm_video"
    for package in LAYER_OF_PACKAGE:
        if (name == package or name.startswith(package + ".")) and len(package) > len(best):
            best = package
    return LAYER_OF_PACKAGE[best]


def test_the_walk_sees_every_layer_and_catches_an_upward_import(tmp_path):
    found = dict(modules())
    assert {"ldm_video.noise", "ldm_video.infer.generate", "ldm_video.toy.demo", "ldm_video.cli"} <= set(found)
    assert layer("ldm_video.vae.causal3d") == 1 and layer("ldm_video.infer.pipeline") == 2
    assert layer("ldm_video.train.engine") == 3 and layer("ldm_video.toy.world") == 4 and layer("ldm_video") == 0
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ldm_video.train.objective import context_mask\n")
    assert max(layer(n) for n in imported(bad)) == 3  # train, above the core, vae and infer
    bad.write_text("from ldm_video.infer import generate\n")
    assert "ldm_video.infer.generate" in imported(bad) & COMMAND_MODULES


@pytest.mark.parametrize("name,path", [(n, p) for n, p in modules() if not n.endswith("__main__")],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_modules_import_only_their_layer_and_below(name, path):
    """`ldm_video/__main__.py` is the program itself (python -m ldm_video), above every layer, so it is left out."""
    own = ABOVE_THEIR_FOLDER.get(name, layer(name))
    upward = sorted(n for n in imported(path) if layer(n) > own)
    assert not upward, f"{path.relative_to(ROOT)} (layer {own}) imports {upward}"
    if name not in COMMAND_MODULES | APPLICATIONS:
        commands = sorted(n for n in imported(path) if n in COMMAND_MODULES or n.rsplit(".", 1)[0] in COMMAND_MODULES)
        assert not commands, f"{path.relative_to(ROOT)} is library code and imports the command modules {commands}"
