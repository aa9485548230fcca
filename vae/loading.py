"""One loader for every video-VAE kind, so `generate --vae` and `train --vae` call a single function."""

from __future__ import annotations

import os

import torch

from ldm_video.errors import LdmVideoError
from ldm_video.vae.causal3d import KIND as CAUSAL3D
from ldm_video.vae.causal3d import check_base_matches, load_causal_vae
from ldm_video.vae.checkpoint import is_video_vae_folder, read_config
from ldm_video.vae.interface import ImageVAE, VideoVAE
from ldm_video.vae.temporal_decoder import KIND as TEMPORAL_DECODER
from ldm_video.vae.temporal_decoder import load_base_vae, load_temporal_decoder

KINDS = ("2d", TEMPORAL_DECODER, CAUSAL3D)


def video_vae_folder(path: str | os.PathLike) -> str:
    """The video-VAE folder `path` names: itself, or the `vae/` of a train-vae run folder or checkpoint."""
    path = str(path)
    if not is_video_vae_folder(path) and is_video_vae_folder(os.path.join(path, "vae")):
        return os.path.join(path, "vae")
    return path


def load_video_vae(
    path_or_base: str | os.PathLike,
    base: str | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    variant: str | None = None,
) -> VideoVAE:
    """A frozen, eval-mode `VideoVAE` from a saved video-VAE folder, or the plain 2D SD VAE of a base model.

    Args:
        path_or_base: a video-VAE folder written by `ldm-video train-vae` (temporal-decoder or causal3d; its run
            folder or a checkpoint of it, whose `vae/` is read), or an SD 2.x
            pipeline folder / hub id / bare `vae/` folder (then the 2D VAE, frame by frame).
        base: the base model in use, when known; a saved VAE built for a different SD VAE is refused with
            CheckpointMismatchError. A temporal decoder is rebuilt on this base (else on the one it recorded).
        variant: `--base-variant` of a single-file base (see ldm_video.single_file).
    """
    from ldm_video.single_file import is_single_file

    path = video_vae_folder(path_or_base)
    if is_video_vae_folder(path):
        kind = read_config(path).get("kind")
        if kind == TEMPORAL_DECODER:
            model: VideoVAE = load_temporal_decoder(path, base_vae=load_base_vae(base, dtype, variant) if base else None,
                                                    dtype=dtype)
        elif kind == CAUSAL3D:
            model = load_causal_vae(path, dtype=dtype)
            if base:
                check_base_matches(model, load_base_vae(base, variant=variant).config, path)
        else:
            raise LdmVideoError(f"{path}: unknown video VAE kind {kind!r}; expected one of {', '.join(KINDS[1:])}")
    elif os.path.isdir(path) or not os.path.exists(path) or is_single_file(path):
        model = ImageVAE(load_base_vae(path, dtype, variant if path == str(base) else None))
    else:
        raise LdmVideoError(f"{path}: expected a video VAE folder or an SD 2.x base model, found a file")
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)
