"""The benchmark scripts are not run by the suite; the names they import from ldm-video must still exist."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).parent.parent / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_benchmark_imports_resolve(script):
    missing = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ldm_video"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name) and importlib.util.find_spec(f"{node.module}.{alias.name}") is None:
                    missing.append(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ldm_video"):
                    importlib.import_module(alias.name)
    assert not missing, f"{script.name} imports names ldm-video no longer has: {missing}"


def test_gpu_script_passes_only_flags_its_scripts_define():
    """benchmarks/gpu.sh runs on a lent GPU where a typo costs the run: each flag it gives a benchmark script is one
    that script's argparse defines, and the shell script parses."""
    import re
    import subprocess

    gpu = SCRIPTS[0].parent / "gpu.sh"
    assert subprocess.run(["bash", "-n", str(gpu)], check=False).returncode == 0
    text = gpu.read_text().replace("\\\n", " ")
    calls = re.findall(r'"\$py" "\$bench/(\w+\.py)"([^\n]*)', text)
    assert {name for name, _ in calls} >= {"plan_vs_real.py", "train_step.py", "generate.py", "context_cache.py"}
    for name, rest in calls:
        defined = {node.args[0].value for node in ast.walk(ast.parse((gpu.parent / name).read_text()))
                   if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"
                   and node.args and isinstance(node.args[0], ast.Constant)}
        given = set(re.findall(r"(?<!\S)(--[a-z][a-z0-9-]*)", rest))
        assert given <= defined, f"gpu.sh gives {name} flags it does not define: {sorted(given - defined)}"
