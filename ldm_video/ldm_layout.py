"""A diffusers SD 2.x pipeline folder written as one original-layout (CompVis / Stability LDM) checkpoint file.

diffusers reads that layout (`from_single_file`) but has no writer for it in the package, so the tests (and the
by-hand full-size check in docs/base.md) make their single files here: `model.diffusion_model.*` (U-Net),
`first_stage_model.*` (VAE) and `cond_stage_model.model.*` (OpenCLIP text encoder), the key names of
Stability's SD 2.x releases. Loading the file back through diffusers must give the folder's weights exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
           ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"))


def _swap(rest: str, pairs) -> str:
    for ours, theirs in pairs:
        if rest.startswith(ours + "."):
            return theirs + rest[len(ours):]
    return rest


def unet_to_ldm(state: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """UNet2DConditionModel tensors -> `model.diffusion_model.*` (input / middle / output blocks)."""
    per = config["layers_per_block"]
    n = len(config["block_out_channels"])
    up_has_attn = ["CrossAttn" in t for t in config["up_block_types"]]
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        head = ".".join(parts[:2])
        if head in fixed or parts[0] in fixed:
            name = fixed.get(head) or fixed[parts[0]]
            rest = key[len(head if head in fixed else parts[0]) + 1:]
            new = f"{name}.{rest}"
        elif parts[0] == "down_blocks":
            i, kind = int(parts[1]), parts[2]
            if kind == "downsamplers":
                new = f"input_blocks.{(i + 1) * (per + 1)}.0.op." + ".".join(parts[5:])
            else:
                j, rest = int(parts[3]), ".".join(parts[4:])
                idx = 1 + i * (per + 1) + j
                new = f"input_blocks.{idx}.0.{_swap(rest, _RESNET)}" if kind == "resnets" else f"input_blocks.{idx}.1.{rest}"
        elif parts[0] == "mid_block":
            j, rest = int(parts[2]), ".".join(parts[3:])
            new = f"middle_block.{2 * j}.{_swap(rest, _RESNET)}" if parts[1] == "resnets" else f"middle_block.1.{rest}"
        elif parts[0] == "up_blocks":
            i, kind = int(parts[1]), parts[2]
            if kind == "upsamplers":
                new = f"output_blocks.{i * (per + 1) + per}.{2 if up_has_attn[i] else 1}.conv." + ".".join(parts[5:])
            else:
                j, rest = int(parts[3]), ".".join(parts[4:])
                idx = i * (per + 1) + j
                new = f"output_blocks.{idx}.0.{_swap(rest, _RESNET)}" if kind == "resnets" else f"output_blocks.{idx}.1.{rest}"
        else:
            raise ValueError(f"unexpected U-Net key {key}")
        out["model.diffusion_model." + new] = value
    assert n == len(config["up_block_types"])
    return out


def vae_to_ldm(state: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """AutoencoderKL tensors -> `first_stage_model.*` (attention projections as 1x1 convolutions)."""
    n = len(config["block_out_channels"])
    attn = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        side, rest = parts[0], ".".join(parts[1:])
        if side in ("quant_conv", "post_quant_conv"):
            out[f"first_stage_model.{key}"] = value
            continue
        p = rest.split(".")
        if p[0] in ("down_blocks", "up_blocks"):
            i = int(p[1]) if p[0] == "down_blocks" else n - 1 - int(p[1])
            where = "down" if p[0] == "down_blocks" else "up"
            if p[2] in ("downsamplers", "upsamplers"):
                new = f"{where}.{i}.{'downsample' if where == 'down' else 'upsample'}." + ".".join(p[4:])
            else:
                new = f"{where}.{i}.block.{p[3]}." + ".".join(p[4:]).replace("conv_shortcut", "nin_shortcut")
        elif p[0] == "mid_block":
            tail = ".".join(p[3:])
            if p[1] == "resnets":
                new = f"mid.block_{int(p[2]) + 1}." + tail.replace("conv_shortcut", "nin_shortcut")
            else:
                for ours, theirs in attn:
                    if tail.startswith(ours + "."):
                        tail = theirs + tail[len(ours):]
                new = f"mid.attn_1.{tail}"
                if value.ndim == 2:
                    value = value[:, :, None, None]  # LDM's attention projections are 1x1 convolutions
        elif p[0] == "conv_norm_out":
            new = "norm_out." + ".".join(p[1:])
        else:
            new = rest
        out[f"first_stage_model.{side}.{new}"] = value
    return out


def text_encoder_to_ldm(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """CLIPTextModel tensors -> OpenCLIP's `cond_stage_model.model.*` (q, k, v fused into in_proj)."""
    state = {k.removeprefix("text_model."): v for k, v in state.items()}
    pre = "cond_stage_model.model."
    out = {pre + "token_embedding.weight": state["embeddings.token_embedding.weight"],
           pre + "positional_embedding": state["embeddings.position_embedding.weight"],
           pre + "ln_final.weight": state["final_layer_norm.weight"],
           pre + "ln_final.bias": state["final_layer_norm.bias"]}
    for i in range(num_layers):
        src, dst = f"encoder.layers.{i}.", f"{pre}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[dst + f"attn.in_proj_{kind}"] = torch.cat(
                [state[src + f"self_attn.{q}_proj.{kind}"] for q in ("q", "k", "v")])
            for ours, theirs in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                                 ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
                out[dst + f"{theirs}.{kind}"] = state[src + f"{ours}.{kind}"]
    return out


def ldm_state(unet, vae, text_encoder, extra_text_layer: bool = False) -> dict[str, torch.Tensor]:
    """One original-layout state dict of the three models. `extra_text_layer` adds OpenCLIP's last block (unused
    by SD 2.x, present in Stability's files), as a copy of the one before it."""
    layers = text_encoder.config.num_hidden_layers
    state = {**unet_to_ldm(unet.state_dict(), unet.config), **vae_to_ldm(vae.state_dict(), vae.config),
             **text_encoder_to_ldm(text_encoder.state_dict(), layers)}
    if extra_text_layer:
        last = f"cond_stage_model.model.transformer.resblocks.{layers - 1}."
        for key in [k for k in state if k.startswith(last)]:
            state[key.replace(f"resblocks.{layers - 1}.", f"resblocks.{layers}.")] = state[key].clone()
    return state


def save_ldm_state(state: dict[str, torch.Tensor], out: str | os.PathLike, dtype: torch.dtype | None = None,
                   metadata: dict[str, str] | None = None) -> Path:
    """`.safetensors` (with `metadata` in its header), or `.ckpt`: a plain {"state_dict": ...} (torch.save)."""
    from safetensors.torch import save_file

    state = {k: (v.to(dtype) if dtype is not None else v).contiguous() for k, v in state.items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".safetensors":
        save_file(state, str(out), metadata=metadata)
    else:
        torch.save({"state_dict": state}, str(out))
    return out


def write_single_file(folder: str | os.PathLike, out: str | os.PathLike, dtype: torch.dtype | None = None,
                      extra_text_layer: bool = False) -> Path:
    """Write the diffusers SD 2.x pipeline at `folder` as one original-layout checkpoint (.safetensors / .ckpt)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae")
    text = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder")
    return save_ldm_state(ldm_state(unet, vae, text, extra_text_layer), out, dtype)
