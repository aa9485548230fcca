"""Shared fixtures: tiny random SD 2.1-shaped models written in the real diffusers layout (never downloaded)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# one intra-op thread: the models here are tiny, and two threads fighting over two (often shared) cores were
# measured 10-40x slower than one
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> str:
    """A tiny epsilon-prediction SD 2.1-shaped pipeline folder (like SD 2.1-base)."""
    from ldm_video.testing import write_tiny_sd

    return str(write_tiny_sd(tmp_path_factory.mktemp("tiny-sd21-eps"), prediction_type="epsilon"))


@pytest.fixture(scope="session")
def tiny_base_v(tmp_path_factory) -> str:
    """A tiny v-prediction SD 2.1-shaped pipeline folder (like SD 2.1 768 px)."""
    from ldm_video.testing import write_tiny_sd

    return str(write_tiny_sd(tmp_path_factory.mktemp("tiny-sd21-v"), prediction_type="v_prediction"))


@pytest.fixture(params=["epsilon", "v_prediction"])
def any_base(request, tiny_base, tiny_base_v) -> str:
    """Both prediction types, one after the other."""
    return tiny_base if request.param == "epsilon" else tiny_base_v
