"""SD 2.1-sized parameter counts (built on the meta device: shapes only, no memory), as docs/api.md states."""

import pytest
import torch
from diffusers import UNet2DConditionModel

from ldm_video import VideoUNetConfig, inflate_unet
from ldm_video.sd2_configs import shipped_config

# docs/api.md, "Temporal-layer sizes at SD 2.1 scale": temporal parameters at SD 2.1 size per temporal_layers choice (millions)
README_COUNTS = {"attn": 453.2, "conv": 266.9, "attn+conv": 720.1}


@pytest.mark.parametrize("layers", list(README_COUNTS))
def test_sd21_parameter_counts(layers):
    with torch.device("meta"):
        unet = UNet2DConditionModel(**shipped_config("unet"))
        model = inflate_unet(unet, VideoUNetConfig(temporal_layers=layers))
    spatial = sum(p.numel() for p in unet.parameters())
    temporal = sum(p.numel() for p in model.trainable_parameters())
    assert round(spatial / 1e6, 1) == 865.9  # SPEC §1
    assert round(temporal / 1e6, 1) == README_COUNTS[layers]
