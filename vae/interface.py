"""The "video VAE" interface shared by the plain SD VAE, the temporal-aware decoder and the 3D causal VAE.

Every kind is an `nn.Module` subclass of `VideoVAE` and is used the same way (SPEC §0 conventions):

    latents = vae.encode(video)          # (b, 3, F, H, W) in [-1, 1] -> (b, 4, f, h, w), times scaling_factor
    video = vae.decode(latents)          # (b, 4, f, h, w) scaled latents -> (b, 3, F, H, W) in about [-1, 1]
    for chunk in vae.decode_chunks(latents, chunk_frames=8):   # stream frames, memory bounded by the chunk
        frames = to_uint8_frames(chunk)  # (b, 3, F_chunk, H, W), in order -> uint8 (b, F_chunk, H, W, 3)
    vae.latent_frames(F) -> f            # F for the per-frame kinds, (F - 1) / 4 + 1 for the causal VAE
    vae.check_num_frames(F)              # LdmVideoError naming the nearest valid lengths when F does not fit
    vae.scaling_factor                   # from the SD VAE config (0.18215 for SD 2.1), never hard-coded

`encode(..., sample=True, generator=g)` draws from the posterior instead of taking its mean; the latents
are always already multiplied by `scaling_factor`, and `decode` divides by it. `chunk_frames` is a number of
*pixel* frames for `encode` and of *latent* frames for `decode`. Kinds (`VideoVAE.kind`):

- "2d": the SD `AutoencoderKL`, frame by frame (frames folded into the batch, `(b c f h w) -> ((b f) c h w)`).
- "temporal-decoder": the frozen 2D encoder and a decoder with temporal convolutions (VidRD), called with
  the true `num_frames` of each decoded chunk.
- "causal3d": an SD VAE inflated to causal 3D convolutions with 4x temporal compression
  (CogVideoX / Open-Sora-Plan style): `4f+1` frames <-> `f+1` latent frames.

`ldm_video.vae.load_video_vae(path_or_base)` returns the right kind from a saved folder or a base model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from einops import rearrange
from torch import nn

from ldm_video.errors import LdmVideoError


class VideoVAE(nn.Module):
    """Common base: encode pixel video to scaled latents and decode back, in frame chunks."""

    kind: str = ""
    temporal_compression: int = 1  # pixel frames per latent frame (after the first)

    @property
    def vae_config(self):
        """The diffusers AutoencoderKL config the model is built on (it defines the shapes and the scale)."""
        raise NotImplementedError

    @property
    def scaling_factor(self) -> float:
        return float(self.vae_config["scaling_factor"])

    @property
    def latent_channels(self) -> int:
        return int(self.vae_config["latent_channels"])

    @property
    def spatial_compression(self) -> int:
        return 2 ** (len(self.vae_config["block_out_channels"]) - 1)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def valid_num_frames(self, num_frames: int) -> bool:
        """True when a clip of `num_frames` pixel frames can be encoded."""
        return num_frames >= 1 and (num_frames - 1) % self.temporal_compression == 0

    def check_num_frames(self, num_frames: int, what: str = "clip") -> None:
        """Raise LdmVideoError naming the nearest valid lengths when `num_frames` breaks the `4f+1` rule."""
        if self.valid_num_frames(num_frames):
            return
        t = self.temporal_compression
        below = max(1, (num_frames - 1) // t * t + 1)
        above = below + t if below < num_frames else 1
        near = f"{below} or {above}" if below < num_frames else f"{above}"
        raise LdmVideoError(
            f"{what} of {num_frames} frames does not fit the {self.kind} VAE (it needs {t}f+1 frames: "
            f"1, {t + 1}, {2 * t + 1}, ...); nearest valid lengths: {near}")

    def latent_frames(self, num_frames: int) -> int:
        """Number of latent frames for `num_frames` pixel frames."""
        self.check_num_frames(num_frames)
        return (num_frames - 1) // self.temporal_compression + 1

    def pixel_frames(self, latent_frames: int) -> int:
        """Number of pixel frames decoded from `latent_frames` latent frames."""
        return (latent_frames - 1) * self.temporal_compression + 1

    # --- what each kind implements ---------------------------------------------------------------
    def encode_moments(self, video: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """Posterior moments (mean, logvar) of `video` (b, 3, F, H, W): (b, 2 * 4, f, h, w), unscaled."""
        raise NotImplementedError

    def decode_unscaled(self, z: torch.Tensor, chunk_frames: int | None = None) -> Iterator[torch.Tensor]:
        """Decode unscaled latents (b, 4, f, h, w) chunk by chunk, yielding (b, 3, F_chunk, H, W)."""
        raise NotImplementedError

    # --- the interface ----------------------------------------------------------------------------
    def posterior(self, video: torch.Tensor, chunk_frames: int | None = None) -> DiagonalGaussianDistribution:
        """The diagonal Gaussian posterior over unscaled latents (b, 4, f, h, w)."""
        if video.ndim != 5 or video.shape[1] != 3:
            raise LdmVideoError(f"video must be (b, 3, frames, height, width), got {tuple(video.shape)}")
        self.check_num_frames(video.shape[2])
        video = video.to(device=self.device, dtype=self.dtype)
        return DiagonalGaussianDistribution(self.encode_moments(video, chunk_frames))

    def encode(
        self,
        video: torch.Tensor,
        sample: bool = False,
        generator: torch.Generator | None = None,
        chunk_frames: int | None = None,
    ) -> torch.Tensor:
        """(b, 3, F, H, W) in [-1, 1] -> latents (b, 4, f, h, w) multiplied by the scaling factor."""
        dist = self.posterior(video, chunk_frames)
        z = dist.sample(generator) if sample else dist.mode()  # (b, 4, f, h, w)
        return z * self.scaling_factor

    def decode_chunks(self, latents: torch.Tensor, chunk_frames: int | None = None) -> Iterator[torch.Tensor]:
        """Yield decoded pixel chunks (b, 3, F_chunk, H, W) of scaled latents (b, 4, f, h, w), in order."""
        if latents.ndim != 5 or latents.shape[1] != self.latent_channels:
            raise LdmVideoError(f"latents must be (b, {self.latent_channels}, frames, h, w), "
                                f"got {tuple(latents.shape)}")
        z = latents.to(device=self.device, dtype=self.dtype) / self.scaling_factor  # (b, 4, f, h, w)
        yield from self.decode_unscaled(z, chunk_frames)

    def decode(self, latents: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """Scaled latents (b, 4, f, h, w) -> pixel video (b, 3, F, H, W)."""
        return torch.cat(list(self.decode_chunks(latents, chunk_frames)), dim=2)

    def stream_decoder(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """A decoder for consecutive pieces of one latent video, handed over in order (long videos).

        Each call takes the next scaled latents (b, 4, f_piece, h, w) and returns their pixel frames; the
        per-frame kinds decode each piece at its true frame count, the causal VAE carries its conv cache.
        """
        return lambda latents: self.decode(latents, chunk_frames=latents.shape[2])

    def forward(
        self, video: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, DiagonalGaussianDistribution]:
        """Training pass, one chunk: (b, 3, F, H, W) -> (reconstruction (b, 3, F, H, W), posterior)."""
        dist = self.posterior(video, chunk_frames=video.shape[2])
        z = dist.sample(generator) if sample else dist.mode()  # (b, 4, f, h, w), unscaled
        recon = torch.cat(list(self.decode_unscaled(z, chunk_frames=z.shape[2])), dim=2)
        return recon, dist


def to_uint8_frames(video: torch.Tensor) -> torch.Tensor:
    """Decoded video (b, 3, F, H, W) in [-1, 1] -> uint8 frames (b, F, H, W, 3), the I/O layout (SPEC §0)."""
    from ldm_video.video_file import to_uint8

    return to_uint8(video).cpu()


def frame_chunks(num_frames: int, chunk_frames: int | None) -> list[slice]:
    """Consecutive slices of at most `chunk_frames` frames (one slice when None)."""
    step = num_frames if not chunk_frames else max(1, int(chunk_frames))
    return [slice(s, min(s + step, num_frames)) for s in range(0, num_frames, step)]


class ImageVAE(VideoVAE):
    """The plain SD VAE applied frame by frame: the baseline every video VAE is compared with."""

    kind = "2d"

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae  # diffusers AutoencoderKL

    @property
    def vae_config(self):
        return self.vae.config

    def encode_moments(self, video: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        out = []
        for s in frame_chunks(video.shape[2], chunk_frames):
            frames = rearrange(video[:, :, s], "b c f h w -> (b f) c h w")
            dist = self.vae.encode(frames.to(self.dtype)).latent_dist
            moments = torch.cat([dist.mean, dist.logvar], dim=1)  # ((b f), 8, h, w)
            out.append(rearrange(moments, "(b f) c h w -> b c f h w", b=video.shape[0]))
        return torch.cat(out, dim=2)  # (b, 8, f, h, w)

    def decode_unscaled(self, z: torch.Tensor, chunk_frames: int | None = None) -> Iterator[torch.Tensor]:
        for s in frame_chunks(z.shape[2], chunk_frames):
            frames = rearrange(z[:, :, s], "b c f h w -> (b f) c h w").to(self.dtype)
            pixels = self.vae.decode(frames).sample  # ((b f), 3, H, W)
            yield rearrange(pixels, "(b f) c h w -> b c f h w", b=z.shape[0])
