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

# slow tests (see the `slow` marker in pyproject.toml) in modules whose tests are marked here instead of at the
# test itself; measured over ~5 s each on a 2-core CPU (2026-12-03)
SLOW_ELSEWHERE = (
    "tests/test_demo.py::test_a_short_recipe_prefers_the_learnt_direction_on_held_out_shapes",
    "tests/test_demo.py::test_demo_runs_every_step_and_reports",
    "tests/test_toy_drift.py::test_a_darkening_background_is_measured_in_grey_levels",
    "tests/test_toy_metrics.py::test_frechet_distance_separates_real_from_broken",
    "tests/test_toy_world.py::test_lasting_motions_go_on_inside_the_frame_with_their_velocity",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.split("[")[0] in SLOW_ELSEWHERE:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _one_thread_again():
    """Each test starts on one intra-op thread: `--threads` changes the process's count, and with several threads
    a batch's results depend on its size, so tests that compare batchings bit for bit would fail after it."""
    torch.set_num_threads(1)
    yield


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


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    """Two 4-frame toy-world videos with captions, a training folder (one per test module)."""
    from ldm_video.toy.world import write_folder

    return write_folder(tmp_path_factory.mktemp("toy"), 2, num_frames=4, seed=0, progress=False)
