"""Pretrain the toy base: a tiny text-to-image latent diffusion model (Rombach et al., LDM) for the toy world.

It has the Stable Diffusion 2.1 layout (SPEC §1) so that every command that takes `--base` runs on it:
an AutoencoderKL with 8x down-sampling and 4 latent channels, a UNet2DConditionModel with linear projections
and a number of heads per block, a frozen *random* CLIP text encoder over the local character tokenizer
(`word_tokens`: BPE merges make each caption word one token), a
DDIM scheduler with SD's scaled-linear noise schedule and epsilon prediction. It is trained on single frames
only (it is the image model that temporal layers are later added to), in two stages: the VAE on rendered
frames (L1 reconstruction weighted towards the object + a small KL term; optionally L1 on image gradients), then the U-Net on cached latents (the LDM epsilon loss, with
caption dropout for classifier-free guidance). The recipe is a frozen dataclass saved next to the weights.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import yaml

from ldm_video.files import atomic_write
from ldm_video.text import encode_prompts
from ldm_video.toy import world


@dataclass(frozen=True)
class ToyRecipe:
    """Everything that determines the toy base; with the seed, the run is reproducible on one CPU thread."""

    seed: int = 0  # seeds the weights, the rendered data and the noise
    # the shapes the base draws (world.ALL_SHAPES); more than the full world's three only for a base that the demo
    # trains on more shapes (benchmarks/RESULTS.md, "Five shapes")
    shapes: tuple[str, ...] = world.SHAPES
    # text encoder (frozen, random): SD 2.1's OpenCLIP tower in miniature
    text_hidden: int = 64  # hidden size = the U-Net's cross_attention_dim
    text_layers: int = 2  # transformer layers
    text_heads: int = 4  # attention heads
    word_tokens: bool = False  # one token per caption word (CLIP-like BPE merges) instead of one per character
    # VAE: 4 blocks -> 8x down-sampling (64 px -> 8x8 latents), 4 latent channels
    vae_channels: tuple[int, ...] = (8, 16, 32, 32)  # block_out_channels
    vae_norm_groups: int = 2  # GroupNorm groups; one channel per group would erase the background level
    vae_steps: int = 3000  # optimiser steps on rendered frames
    vae_batch: int = 8  # frames per VAE step
    vae_lr: float = 2e-3  # AdamW learning rate (cosine decay)
    vae_kl_weight: float = 1e-6  # weight of the KL term (LDM's KL-f8 uses 1e-6)
    vae_object_weight: float = 5.0  # extra L1 weight on object pixels (they cover ~10% of a frame)
    vae_gradient_weight: float = 0.0  # weight of an L1 loss on image gradients (0: off)
    vae_init_logvar: float = -8.0  # initial bias of the encoder's log-variance outputs
    # U-Net: SD 2.1's block pattern (cross-attention down blocks, then a plain one), heads of 32 channels
    unet_channels: tuple[int, ...] = (32, 64, 64)  # block_out_channels
    unet_heads: tuple[int, ...] = (1, 2, 2)  # attention heads per block (diffusers' attention_head_dim)
    unet_layers_per_block: int = 1  # ResNet(+Transformer) pairs per block (SD 2.1 has 2)
    unet_norm_groups: int = 8  # GroupNorm groups (SD's 32 would make 1-channel groups here)
    unet_steps: int = 4000  # optimiser steps on cached latents
    unet_batch: int = 64  # latents per U-Net step
    unet_lr: float = 1e-3  # AdamW peak learning rate (linear warm-up, cosine decay)
    unet_warmup: int = 100  # warm-up steps
    caption_dropout: float = 0.1  # probability of training on the empty caption (for guidance)
    latent_cache: int = 8192  # rendered frames encoded once for U-Net training
    # evaluation of the finished model (the ">= 80% draw the captioned colour and shape" check)
    eval_per_caption: int = 2  # samples per caption (60 captions with three shapes)
    eval_steps: int = 25  # DDIM steps
    eval_guidance: float = 5.0  # classifier-free guidance scale

    def __post_init__(self) -> None:
        # once each, in one order (so two recipes of the same shapes draw the same data); ValueError for an unknown one
        object.__setattr__(self, "shapes", world.canonical_shapes(self.shapes))

    def save(self, path: Path) -> None:
        _atomic_write(path, yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v
                                            for k, v in asdict(self).items()}, sort_keys=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> ToyRecipe:
        data = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown recipe fields {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _atomic_write(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def build_models(recipe: ToyRecipe, tokenizer_dir: Path):
    """Fresh (tokenizer, text encoder, VAE, U-Net, scheduler) shaped by the recipe, seeded."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from ldm_video.testing import write_tiny_tokenizer

    torch.manual_seed(recipe.seed)
    words = tuple(sorted({w for c in world.all_captions(recipe.shapes) for w in c.split()})) if recipe.word_tokens else ()
    tokenizer = CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tokenizer_dir, words))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=recipe.text_hidden, intermediate_size=4 * recipe.text_hidden,
        num_hidden_layers=recipe.text_layers, num_attention_heads=recipe.text_heads,
        max_position_embeddings=tokenizer.model_max_length, hidden_act="gelu",  # OpenCLIP ViT-H uses gelu
        projection_dim=recipe.text_hidden,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"), pad_token_id=0,
    ))
    n = len(recipe.vae_channels)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=recipe.vae_channels, layers_per_block=1,
        latent_channels=4, norm_num_groups=recipe.vae_norm_groups, sample_size=world.WorldConfig().size,
    )
    m = len(recipe.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=world.WorldConfig().size // 2 ** (n - 1), in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * (m - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (m - 1),
        block_out_channels=recipe.unet_channels, layers_per_block=recipe.unet_layers_per_block,
        cross_attention_dim=recipe.text_hidden, attention_head_dim=recipe.unet_heads,
        use_linear_projection=True, norm_num_groups=recipe.unet_norm_groups,
    )
    scheduler = DDIMScheduler(  # SD 2.1-base's schedule and prediction type
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon", num_train_timesteps=1000,
    )
    return tokenizer, text_encoder, vae, unet, scheduler


def render_frames(rng: np.random.Generator, count: int,
                  shapes: tuple[str, ...] = world.SHAPES) -> tuple[np.ndarray, list[str]]:
    """`count` random single frames of toy videos of these shapes with their captions: uint8 (n, h, w, 3)."""
    config = world.WorldConfig(shapes=shapes)
    frames, captions = [], []
    for _ in range(count):
        spec = world.sample_spec(rng, num_frames=16, config=config)
        frames.append(world.render_frame(spec, int(rng.integers(0, spec.num_frames))))
        captions.append(spec.caption)
    return np.stack(frames), captions


def to_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 (n, h, w, 3) -> float (n, 3, h, w) in [-1, 1]."""
    from einops import rearrange

    x = torch.from_numpy(frames).float() / 127.5 - 1  # (n, h, w, 3)
    return rearrange(x, "n h w c -> n c h w")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (n, 3, h, w) in [-1, 1] -> uint8 (n, h, w, 3), as numpy."""
    from ldm_video.video_file import to_uint8 as pixels_to_uint8

    return pixels_to_uint8(images).cpu().numpy()


def gradient_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the horizontal and vertical finite differences of two (n, c, h, w) images."""
    dx = (a[..., :, 1:] - a[..., :, :-1]) - (b[..., :, 1:] - b[..., :, :-1])  # (n, c, h, w-1)
    dy = (a[..., 1:, :] - a[..., :-1, :]) - (b[..., 1:, :] - b[..., :-1, :])  # (n, c, h-1, w)
    return dx.abs().mean() + dy.abs().mean()


def train_vae(vae, recipe: ToyRecipe, rng: np.random.Generator, progress: bool = True) -> float:
    """Stage 1: fit the VAE to rendered frames (object-weighted L1 + KL); returns the final MSE in [-1, 1] units."""
    from tqdm import tqdm

    vae.train()
    with torch.no_grad():  # start with a near-deterministic posterior (std e^-4): early samples are not
        moments = vae.quant_conv  # swamped by unit noise, and latent_dist.sample() ~ mode() after training
        moments.weight[4:].mul_(0.01)  # (8, 8, 1, 1): output channels 4..7 are the log-variances
        moments.bias[4:].fill_(recipe.vae_init_logvar)
    opt = torch.optim.AdamW(vae.parameters(), lr=recipe.vae_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.vae_steps)
    ema = None
    bar = tqdm(range(recipe.vae_steps), desc="toy VAE", disable=not progress)
    for _ in bar:
        frames, _ = render_frames(rng, recipe.vae_batch, recipe.shapes)
        x = to_pixels(frames)  # (b, 3, 64, 64)
        chroma = x.amax(dim=1, keepdim=True) - x.amin(dim=1, keepdim=True)  # (b, 1, 64, 64), 0 on background
        weight = 1 + recipe.vae_object_weight * (chroma > 0).float()  # (b, 1, 64, 64)
        posterior = vae.encode(x).latent_dist
        z = posterior.sample()  # (b, 4, 8, 8)
        recon = vae.decode(z).sample  # (b, 3, 64, 64)
        l1 = ((recon - x).abs() * weight).mean() / weight.mean()
        mse = (recon - x).pow(2).mean().detach()
        loss = l1 + recipe.vae_gradient_weight * gradient_l1(recon, x) + recipe.vae_kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ema = mse.item() if ema is None else 0.95 * ema + 0.05 * mse.item()
        bar.set_postfix(mse=f"{ema:.5f}")
    vae.eval()
    return float(ema)


@torch.no_grad()
def cache_latents(vae, recipe: ToyRecipe, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Encode `latent_cache` rendered frames once: posterior mean and std (n, 4, 8, 8), and captions."""
    means, stds, captions = [], [], []
    for start in range(0, recipe.latent_cache, 256):
        frames, caps = render_frames(rng, min(256, recipe.latent_cache - start), recipe.shapes)
        dist = vae.encode(to_pixels(frames)).latent_dist
        means.append(dist.mean)  # (b, 4, 8, 8)
        stds.append(dist.std)
        captions += caps
    return torch.cat(means), torch.cat(stds), captions


def train_unet(unet, scheduler, latents_mean, latents_std, scale: float, text_table: torch.Tensor,
               caption_index: torch.Tensor, recipe: ToyRecipe, progress: bool = True) -> float:
    """Stage 2: the LDM epsilon loss on cached latents; text_table[-1] is the empty caption. Returns the loss."""
    from tqdm import tqdm

    unet.train()
    opt = torch.optim.AdamW(unet.parameters(), lr=recipe.unet_lr, weight_decay=0.01)
    warm, total = recipe.unet_warmup, recipe.unet_steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, max(0, s - warm) / max(1, total - warm)))))
    n, empty = len(latents_mean), len(text_table) - 1
    ema = None
    bar = tqdm(range(total), desc="toy U-Net", disable=not progress)
    for _ in bar:
        idx = torch.randint(0, n, (recipe.unet_batch,))
        x0 = (latents_mean[idx] + latents_std[idx] * torch.randn_like(latents_mean[idx])) * scale  # (b, 4, 8, 8)
        cond = caption_index[idx].clone()  # (b,)
        cond[torch.rand(len(cond)) < recipe.caption_dropout] = empty
        noise = torch.randn_like(x0)  # (b, 4, 8, 8)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),))  # (b,)
        xt = scheduler.add_noise(x0, noise, t)  # sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
        pred = unet(xt, t, text_table[cond]).sample  # (b, 4, 8, 8)
        loss = (pred - noise).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        sched.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        bar.set_postfix(loss=f"{ema:.4f}")
    unet.eval()
    return float(ema)


@torch.no_grad()
def sample_images(base, captions: list[str], steps: int = 25, guidance: float = 5.0,
                  generator: torch.Generator | None = None, batch: int = 64) -> np.ndarray:
    """Text -> images with DDIM and classifier-free guidance from a loaded BaseModel: uint8 (n, h, w, 3)."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(base.scheduler.config)
    size = base.unet.config.sample_size
    out = []
    for start in range(0, len(captions), batch):
        caps = captions[start:start + batch]
        cond = encode_prompts(base.tokenizer, base.text_encoder, caps)  # (b, seq, dim)
        uncond = encode_prompts(base.tokenizer, base.text_encoder, [""] * len(caps))  # (b, seq, dim)
        context = torch.cat([uncond, cond])  # (2b, seq, dim)
        z = torch.randn((len(caps), base.unet.config.in_channels, size, size), generator=generator)  # (b, 4, h, w)
        scheduler.set_timesteps(steps)
        z = z * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            eps_uncond, eps_cond = base.unet(torch.cat([z, z]), t, context).sample.chunk(2)  # (b, 4, h, w) x2
            eps = eps_uncond + guidance * (eps_cond - eps_uncond)  # classifier-free guidance
            z = scheduler.step(eps, t, z).prev_sample
        out.append(to_uint8(base.vae.decode(z / base.vae_scale).sample))  # (b, h, w, 3)
    return np.concatenate(out)


def evaluate(path: str | os.PathLike, per_caption: int = 2, steps: int = 25, guidance: float = 5.0,
             seed: int = 1234) -> dict:
    """Sample every toy caption `per_caption` times; the fraction drawn with the captioned colour and shape."""
    from ldm_video.base import load_base
    from ldm_video.toy.metrics import analyse_frame

    base = load_base(str(path))
    recipe_file = Path(path) / "recipe.yaml"
    shapes = ToyRecipe.load(recipe_file).shapes if recipe_file.is_file() else world.SHAPES
    captions = [c for c in world.all_captions(shapes) for _ in range(per_caption)]
    images = sample_images(base, captions, steps, guidance, torch.Generator().manual_seed(seed))
    rows = []
    for caption, image in zip(captions, images):
        colour, shape, _ = world.parse_caption(caption)
        a = analyse_frame(image)
        rows.append((a.present, a.present and a.colour == colour, a.present and a.shape == shape))
    present, colour_ok, shape_ok = (np.array(c, dtype=bool) for c in zip(*rows))
    return {
        "samples": len(captions), "ddim_steps": steps, "guidance": guidance, "seed": seed,
        "present": float(present.mean()), "colour_right": float(colour_ok.mean()),
        "shape_right": float(shape_ok.mean()), "colour_and_shape_right": float((colour_ok & shape_ok).mean()),
    }


STAGE1_FIELDS = ("seed", "shapes", "text_hidden", "text_layers", "text_heads", "word_tokens", "vae_channels",
                 "vae_norm_groups", "vae_steps", "vae_batch", "vae_lr", "vae_kl_weight", "vae_object_weight",
                 "vae_gradient_weight", "vae_init_logvar")  # what determines the text encoder and the trained VAE


def _reuse_stage1(path: Path, recipe: ToyRecipe, text_encoder, vae, rng: np.random.Generator) -> None:
    """Load the text encoder and VAE of an earlier run with the same stage-1 recipe, and advance `rng` past
    the VAE's training frames, so that stage 2 proceeds as in a run from scratch (same data, same seeds; equal
    up to float rounding)."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel

    from ldm_video.errors import LdmVideoError

    try:
        earlier = ToyRecipe.load(path / "recipe.yaml")
    except (OSError, ValueError, TypeError) as err:
        raise LdmVideoError(f"{path}: no toy recipe to reuse the VAE from ({err})") from None
    differ = [f for f in STAGE1_FIELDS if getattr(earlier, f) != getattr(recipe, f)]
    if differ:
        raise LdmVideoError(f"{path}: its recipe differs in {', '.join(differ)}; its VAE cannot be reused")
    vae.load_state_dict(AutoencoderKL.from_pretrained(path, subfolder="vae").state_dict())
    text_encoder.load_state_dict(CLIPTextModel.from_pretrained(path, subfolder="text_encoder").state_dict())
    vae.eval()
    for _ in range(recipe.vae_steps):
        render_frames(rng, recipe.vae_batch, recipe.shapes)  # the frames stage 1 drew


def pretrain(out: str | os.PathLike, recipe: ToyRecipe = ToyRecipe(), progress: bool = True,
             evaluate_after: bool = True, reuse_vae: str | os.PathLike | None = None) -> dict:
    """Train the toy base and write it as a StableDiffusionPipeline folder with recipe.yaml and report.json.

    Args:
        reuse_vae: an earlier toy base whose recipe has the same stage-1 fields: its (deterministic) VAE and
            text encoder are loaded instead of retrained; the rest of the run is unchanged.
    """
    from diffusers import StableDiffusionPipeline

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.time()
    rng = np.random.default_rng(recipe.seed)
    tokenizer, text_encoder, vae, unet, scheduler = build_models(recipe, tmp / "_tokenizer")
    text_encoder.requires_grad_(False).eval()
    if reuse_vae is None:
        vae_mse = train_vae(vae, recipe, rng, progress)
    else:
        _reuse_stage1(Path(reuse_vae), recipe, text_encoder, vae, rng)
        vae_mse = json.loads((Path(reuse_vae) / "report.json").read_text())["vae_mse"]
    vae.requires_grad_(False)
    torch.manual_seed(recipe.seed + 1)  # stage 2 draws its own torch randomness (so a reused VAE changes nothing)
    means, stds, captions = cache_latents(vae, recipe, rng)
    scale = float(1.0 / means.std())  # like SD's 0.18215: latents of unit variance for the U-Net
    vae.register_to_config(scaling_factor=scale)
    table_captions = world.all_captions(recipe.shapes) + [""]  # the last row is the empty caption
    text_table = encode_prompts(tokenizer, text_encoder, table_captions)  # (61, seq, dim) with the three shapes
    caption_index = torch.tensor([table_captions.index(c) for c in captions])  # (n,)
    unet_loss = train_unet(unet, scheduler, means, stds, scale, text_table, caption_index, recipe, progress)
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(tmp, safe_serialization=True)
    shutil.rmtree(tmp / "_tokenizer")
    recipe.save(tmp / "recipe.yaml")
    report = {"vae_mse": vae_mse, "unet_loss": unet_loss, "vae_scaling_factor": scale,
              "vae_reused_from": str(reuse_vae) if reuse_vae else None,
              "train_seconds": round(time.time() - start, 1), "torch_threads": torch.get_num_threads(),
              "torch": torch.__version__}
    if evaluate_after:
        report["eval"] = evaluate(tmp, recipe.eval_per_caption, recipe.eval_steps, recipe.eval_guidance)
    report["size_bytes"] = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
    _atomic_write(tmp / "report.json", json.dumps(report, indent=1) + "\n")
    from ldm_video.files import replace_folder

    replace_folder(tmp, out)
    return report
