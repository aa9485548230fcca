"""Block-causal context frames: frames given as context (`train --context-frames`, `generate --extend context`)
attend only to each other in the temporal attention, never to the frames being denoised.

Their keys and values then do not change while a clip is denoised, so a sampler runs the given frames through
the U-Net once per clip, keeps every temporal attention's keys and values, and runs only the new frames at each
step: the key-value cache of autoregressive video diffusion (CausVid, Yin et al., 2024; Diffusion Forcing, Chen
et al., 2024), here per clip. Training applies the same rule as an attention mask, so the layers learn what the
cached sampler does. Temporal attention is the only layer that mixes frames once the motion modules normalise
per frame (`VideoUNetConfig` requires it), so the given frames' whole path is independent of the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


def block_causal_mask(given: torch.Tensor) -> torch.Tensor:
    """(b, f) bool, frames given as context -> (b, f, f) bool, True where query frame i may attend key frame j:
    a given frame attends to given frames only; any other frame attends to every frame."""
    return ~(given[:, :, None] & ~given[:, None, :])  # (b, f, f)


@dataclass
class ContextCache:
    """The given frames' keys and values at every temporal attention of one U-Net call on them."""

    frames: int = 0  # given frames held: the frames run against the cache take the positions after them
    recording: bool = True  # the next call records (on the given frames) rather than reads (on the new ones)
    keys_values: dict[object, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


class BlockCausalAttnProcessor:
    """The attention processor of one temporal self-attention of a block-causal motion module.

    With neither `given` nor `cache` it is plain attention over the frames (diffusers' AttnProcessor2_0 for the
    motion modules' attention, which has no norms or residual of its own). `given` (b, f): one full pass with
    the block-causal mask. `cache`: the given frames alone (recording their keys and values) or the new frames
    alone, attending to the recorded keys and values and their own.
    """

    def __init__(self, pos_embed: nn.Module | None) -> None:
        self.pos_embed = pos_embed  # the block's sinusoidal frame positions (not registered: a reference)

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states=None, attention_mask=None,
                 temb=None, given: torch.Tensor | None = None, cache: ContextCache | None = None) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None:
            raise ValueError("a temporal self-attention takes neither encoder states nor an attention mask")
        rows, f, _ = hidden_states.shape  # ((b h w), f, c): one sequence of frames per latent pixel
        if cache is not None and not cache.recording and self.pos_embed is not None:
            # the block added positions 0..f-1; these frames sit after the cached ones
            pe = self.pos_embed.pe  # (1, max_frames, c)
            hidden_states = hidden_states + (pe[:, cache.frames:cache.frames + f] - pe[:, :f]).to(hidden_states)
        heads = attn.heads
        q, k, v = (attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states))  # (rows, f, c)
        q, k, v = (x.view(rows, f, heads, -1).transpose(1, 2) for x in (q, k, v))  # (rows, heads, f, d)
        mask = None
        if cache is not None and cache.recording:
            cache.keys_values[self] = (k, v)
        elif cache is not None:
            cached_k, cached_v = cache.keys_values[self]  # (rows, heads, M, d)
            k, v = torch.cat([cached_k, k], dim=2), torch.cat([cached_v, v], dim=2)  # (rows, heads, M + f, d)
        elif given is not None:
            b = given.shape[0]
            mask = block_causal_mask(given)  # (b, f, f)
            mask = mask[:, None].expand(b, rows // b, f, f).reshape(rows, 1, f, f)  # rows are (b h w), b-major
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (rows, heads, f, d)
        out = out.transpose(1, 2).reshape(rows, f, -1).to(q.dtype)  # (rows, f, c)
        out = attn.to_out[1](attn.to_out[0](out))  # projection, dropout
        return out / attn.rescale_output_factor


def install(motion: nn.Module) -> None:
    """Give every temporal self-attention of a MotionAdapter its block-causal processor."""
    for module in motion.modules():
        if not hasattr(module, "transformer_blocks"):
            continue
        for block in module.transformer_blocks:
            for attn in (block.attn1, getattr(block, "attn2", None)):
                if attn is None:
                    continue
                if (attn.spatial_norm is not None or attn.group_norm is not None or attn.norm_q is not None
                        or attn.residual_connection):
                    raise ValueError("block-causal context expects the motion modules' plain temporal attention")
                attn.set_processor(BlockCausalAttnProcessor(block.pos_embed))
