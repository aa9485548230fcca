"""PYoCo noise priors (SPEC §3): per-frame mean 0 / variance 1 and the specified frame correlations."""

import math

import pytest
import torch

from ldm_video import video_noise
from ldm_video.noise import expected_correlation

# b * c * h * w = 2 * 4 * 256 * 256 = 524288 samples per frame, 8 frames -> 4.2e6 samples
SHAPE = (2, 4, 8, 256, 256)


def _frames(eps: torch.Tensor) -> torch.Tensor:
    return eps.permute(2, 0, 1, 3, 4).reshape(eps.shape[2], -1).double()  # (f, samples)


@pytest.mark.parametrize("prior", ["iid", "mixed", "progressive"])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 4.0])
def test_prior_statistics(prior, alpha):
    eps = video_noise(SHAPE, prior, alpha, generator=torch.Generator().manual_seed(0))
    x = _frames(eps)
    assert x.shape[1] >= 10**5 and x.numel() >= 10**6
    assert x.mean(1).abs().max() < 0.02
    assert (x.var(1) - 1).abs().max() < 0.02
    corr = torch.corrcoef(x)
    for i in range(SHAPE[2]):
        for j in range(SHAPE[2]):
            assert abs(corr[i, j].item() - expected_correlation(prior, alpha, abs(i - j))) < 0.02, (i, j)


def test_expected_correlations_match_spec():
    assert expected_correlation("mixed", 1.0, 3) == pytest.approx(0.5)
    assert expected_correlation("progressive", 2.0, 2) == pytest.approx(0.8)
    assert expected_correlation("progressive", 4.0, 1) == pytest.approx(4 / math.sqrt(17))


@pytest.mark.parametrize("prior", ["mixed", "progressive"])
def test_alpha_zero_is_iid(prior):
    a = video_noise((1, 4, 5, 8, 8), prior, 0.0, generator=torch.Generator().manual_seed(3))
    b = video_noise((1, 4, 5, 8, 8), "iid", 0.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("prior", ["iid", "mixed", "progressive"])
def test_deterministic_under_seed(prior):
    a = video_noise((1, 4, 5, 8, 8), prior, 2.0, generator=torch.Generator().manual_seed(7))
    b = video_noise((1, 4, 5, 8, 8), prior, 2.0, generator=torch.Generator().manual_seed(7))
    c = video_noise((1, 4, 5, 8, 8), prior, 2.0, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_alpha_infinity_freezes_frames():
    eps = video_noise((1, 4, 6, 8, 8), "progressive", math.inf, generator=torch.Generator().manual_seed(0))
    assert torch.equal(eps[:, :, 0], eps[:, :, 5])


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown noise prior"):
        video_noise((1, 4, 2, 8, 8), "pink", 1.0)
    with pytest.raises(ValueError, match=">= 0"):
        video_noise((1, 4, 2, 8, 8), "mixed", -1.0)
    with pytest.raises(ValueError, match="shape"):
        video_noise((4, 2, 8, 8), "mixed", 1.0)
