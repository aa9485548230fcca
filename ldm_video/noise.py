"""Video noise priors of PYoCo (Ge et al., "Preserve Your Own Correlation", ICCV 2023), eqs. (3) and (4).

Pure functions of a shape, alpha and a torch.Generator. Every frame has mean 0 and variance exactly 1;
the numbers in the paper are *variances* (VidRD's released code passes them as standard deviations,
which leaves the frames with variance != 1; not repeated here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from diffusers.utils.torch_utils import randn_tensor

Shape = Sequence[int]


def _randn(shape: Shape, generator, device, dtype) -> torch.Tensor:
    return randn_tensor(tuple(shape), generator=generator, device=device, dtype=dtype)


def _check(shape: Shape, alpha: float) -> None:
    if len(shape) != 5:
        raise ValueError(f"video noise needs a (b, c, f, h, w) shape, got {tuple(shape)}")
    if not alpha >= 0:  # also refuses NaN
        raise ValueError(f"noise alpha must be >= 0, got {alpha}")


def correlation_weights(alpha: float) -> tuple[float, float]:
    """(sqrt(alpha^2/(1+alpha^2)), sqrt(1/(1+alpha^2))): the std of the shared/carried and fresh parts."""
    if math.isinf(alpha):
        return 1.0, 0.0
    return alpha / math.sqrt(1.0 + alpha * alpha), 1.0 / math.sqrt(1.0 + alpha * alpha)


def iid_noise(shape: Shape, alpha: float = 0.0, generator=None, device=None, dtype=None) -> torch.Tensor:
    """eps_i ~ N(0, I) independently per frame (alpha is ignored)."""
    _check(shape, alpha)
    return _randn(shape, generator, device, dtype)


def mixed_noise(shape: Shape, alpha: float, generator=None, device=None, dtype=None) -> torch.Tensor:
    """PYoCo eq. (3): eps_i = eps_shared + eps_ind_i; corr(eps_i, eps_j) = alpha^2 / (1 + alpha^2)."""
    _check(shape, alpha)
    if alpha == 0:
        return iid_noise(shape, 0.0, generator, device, dtype)
    b, c, f, h, w = shape
    w_shared, w_ind = correlation_weights(alpha)
    shared = _randn((b, c, 1, h, w), generator, device, dtype)  # (b, c, 1, h, w), N(0, I)
    ind = _randn((b, c, f, h, w), generator, device, dtype)  # (b, c, f, h, w), N(0, I)
    return w_shared * shared + w_ind * ind  # eps_shared ~ N(0, a^2/(1+a^2)), eps_ind ~ N(0, 1/(1+a^2))


def progressive_noise(shape: Shape, alpha: float, generator=None, device=None, dtype=None) -> torch.Tensor:
    """PYoCo eq. (4): eps_i = alpha/sqrt(1+alpha^2) eps_{i-1} + eps_ind_i; corr = (alpha/sqrt(1+alpha^2))^|i-j|."""
    _check(shape, alpha)
    if alpha == 0:
        return iid_noise(shape, 0.0, generator, device, dtype)
    w_prev, w_ind = correlation_weights(alpha)
    fresh = _randn(shape, generator, device, dtype)  # (b, c, f, h, w), N(0, I)
    frames = [fresh[:, :, 0]]  # eps_0 ~ N(0, I)
    for i in range(1, shape[2]):
        frames.append(w_prev * frames[-1] + w_ind * fresh[:, :, i])  # eps_ind_i ~ N(0, 1/(1+a^2))
    return torch.stack(frames, dim=2)  # (b, c, f, h, w)


NoiseFn = Callable[..., torch.Tensor]
NOISE_PRIORS: dict[str, NoiseFn] = {
    "iid": iid_noise,
    "mixed": mixed_noise,
    "progressive": progressive_noise,
}


def video_noise(
    shape: Shape,
    prior: str = "iid",
    alpha: float = 0.0,
    generator: torch.Generator | list[torch.Generator] | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Noise of `shape` (b, c, f, h, w) from the named prior ("iid", "mixed", "progressive").

    Same generator state, same noise. The generator may live on another device than `device`
    (diffusers' `randn_tensor` convention), so a CPU generator gives the same video on every device.
    """
    if prior not in NOISE_PRIORS:
        raise ValueError(f"unknown noise prior {prior!r}; choose from {', '.join(NOISE_PRIORS)}")
    return NOISE_PRIORS[prior](shape, alpha, generator=generator, device=device, dtype=dtype)


def expected_correlation(prior: str, alpha: float, lag: int) -> float:
    """The correlation between frames i and i+lag that `prior` is built to have (SPEC §3)."""
    if lag == 0:
        return 1.0
    rho = correlation_weights(alpha)[0]
    if prior == "iid":
        return 0.0
    if prior == "mixed":
        return rho * rho
    if prior == "progressive":
        return rho ** abs(lag)
    raise ValueError(f"unknown noise prior {prior!r}")
