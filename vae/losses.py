"""Training losses for the video VAEs (SPEC §5): L1 reconstruction, a temporal loss on frame differences,
the KL term of the VAE objective (Kingma & Welling 2014; weighted as in LDM's autoencoder, Rombach et al.
2022), and LPIPS (Zhang et al. 2018) when the `lpips` package and its weights are on this machine.

All take video as (b, 3, f, H, W) in [-1, 1].
"""

from __future__ import annotations

import os

import torch
from einops import rearrange

from ldm_video.errors import LdmVideoError

# torchvision's AlexNet weights, which lpips.LPIPS(net="alex") loads from the torch hub cache
LPIPS_BACKBONE_FILE = "alexnet-owt-7be5be79.pth"


def l1_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every pixel of every frame."""
    return (recon - target).abs().mean()


def frame_differences(video: torch.Tensor) -> torch.Tensor:
    """x_{t+1} - x_t: (b, 3, f, H, W) -> (b, 3, f-1, H, W)."""
    return video[:, :, 1:] - video[:, :, :-1]


def temporal_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the reconstruction's and the input's frame differences (0 for one-frame clips)."""
    if recon.shape[2] < 2:
        return recon.new_zeros(())
    return (frame_differences(recon) - frame_differences(target)).abs().mean()


def kl_per_pixel(mean: torch.Tensor, logvar: torch.Tensor, num_pixel_values: int) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over the latent, per sample, divided by the sample's
    number of pixel values, so that LDM's kl_weight 1e-6 keeps its meaning next to a per-pixel L1."""
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)  # (b, 4, f, h, w)
    return kl.flatten(1).sum(dim=1).mean() / num_pixel_values


class LPIPSLoss(torch.nn.Module):
    """Perceptual distance per frame with the `lpips` package (AlexNet), frozen; weights must be local."""

    def __init__(self):
        super().__init__()
        try:
            import lpips
        except ImportError:
            raise LdmVideoError("--lpips-weight needs the lpips package (pip install lpips)") from None
        backbone = os.path.join(torch.hub.get_dir(), "checkpoints", LPIPS_BACKBONE_FILE)
        if not os.path.isfile(backbone):
            raise LdmVideoError(f"{backbone}: LPIPS AlexNet weights not found on this machine (nothing is "
                                f"downloaded); copy torchvision's {LPIPS_BACKBONE_FILE} there or drop --lpips-weight")
        self.net = lpips.LPIPS(net="alex", verbose=False).eval().requires_grad_(False)

    def forward(self, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a = rearrange(recon, "b c f h w -> (b f) c h w")
        b = rearrange(target, "b c f h w -> (b f) c h w")
        return self.net(a.float(), b.float()).mean()
