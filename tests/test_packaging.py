"""What a wheel ships: every data file beside the code (SD 2.1 configs, the tokenizer, the presets, the toy base) is
named by `pyproject.toml`'s package data, and every folder that holds such files under an importable name is a
listed package (setuptools warns, and will stop shipping, data in folders that are not)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
ROOT = Path(__file__).resolve().parents[1]


def _setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _package_dirs(table: dict) -> dict[str, Path]:
    """Each listed package -> its folder, from `package-dir` (a sub-package lies under its nearest mapped parent)."""
    mapped = table.get("package-dir", {})
    dirs = {}
    for package in table["packages"]:
        parts = package.split(".")
        for cut in range(len(parts), 0, -1):
            parent = ".".join(parts[:cut])
            if parent in mapped:
                dirs[package] = ROOT / mapped[parent] / Path(*parts[cut:])
                break
        else:
            dirs[package] = ROOT / Path(*parts)
    return dirs


def _data_files(dirs: dict[str, Path]) -> set[Path]:
    """Files beside the code of the top-level packages that are not Python sources or caches."""
    roots = [d for p, d in dirs.items() if p.count(".") <= 1]
    return {f for root in roots for f in root.rglob("*")
            if f.is_file() and f.suffix not in (".py", ".pyc") and "__pycache__" not in f.parts}


def test_every_data_file_is_named_by_package_data():
    table = _setuptools_table()
    dirs = _package_dirs(table)
    shipped = {f for package, globs in table["package-data"].items() for g in globs
               for f in dirs[package].glob(g) if f.is_file()}
    data = _data_files(dirs)
    assert any(f.name == "diffusion_pytorch_model.safetensors" for f in data)  # the toy base is among them
    missing = sorted(str(f.relative_to(ROOT)) for f in data - shipped)
    assert not missing, f"data files no wheel would ship: {missing}"


def test_every_importable_data_folder_is_a_listed_package():
    table = _setuptools_table()
    dirs = _package_dirs(table)
    listed = {d.resolve() for d in dirs.values()}
    stray = set()
    for f in _data_files(dirs):
        for folder in f.parents:
            if folder.resolve() in listed or folder == ROOT:
                break
            if all(part.isidentifier() for part in folder.relative_to(ROOT).parts):
                stray.add(str(folder.relative_to(ROOT)))
    assert not stray, f"folders with data that are not listed packages: {sorted(stray)}"
