"""The toy world: a procedural text-video world with ground-truth metrics, and a tiny SD 2.1-shaped base for it.

It stands in for Stable Diffusion 2.1 where no weights or GPU are at hand (demos, tests, benchmarks), and
gives measurable answers (is the captioned object there, does it move as captioned) where real data has none.
"""

from __future__ import annotations

from pathlib import Path

TOY_BASE = Path(__file__).parent / "assets" / "base"  # the shipped toy base model (diffusers pipeline folder)
