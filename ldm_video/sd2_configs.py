"""The diffusers configs of Stable Diffusion 2.1-base (epsilon, 512 px) and 2.1 (v-prediction, 768 px), which
`--base FILE.safetensors` loads a single-file checkpoint with (SPEC §1), and the script that writes them.

The package ships the result under `ldm_video/sd2/` (configs and CLIP tokenizer files only, no weights): with
`config=` pointing there diffusers' `from_single_file` never looks at the hub, and without it diffusers takes
every SD 2.x file for the 768-v model. The tokenizer is CLIP's byte-level BPE (OpenCLIP ViT-H/14 uses CLIP's
vocabulary), built from the merges that open_clip_torch ships and checked against CLIP's known token ids:

    pip download open_clip_torch --no-deps -d /tmp/oc
    python -m ldm_video.sd2_configs /tmp/oc/open_clip_torch-*.whl
"""

from __future__ import annotations

import gzip
import json
import sys
import zipfile
from pathlib import Path

SD2_DIR = Path(__file__).with_name("sd2")
VARIANTS = ("2.1-base", "2.1-768-v")
# CLIP's ids for "a photo of a cat" (start, a, photo, of, a, cat, end)
KNOWN_IDS = ("a photo of a cat", [49406, 320, 1125, 539, 320, 2368, 49407])


def variant_configs(variant: str) -> dict[str, dict]:
    """{relative path: JSON} of one variant's pipeline folder (without the shared tokenizer/)."""
    v = variant == "2.1-768-v"
    size = 768 if v else 512
    unet = {
        "_class_name": "UNet2DConditionModel",
        "act_fn": "silu",
        "attention_head_dim": [5, 10, 20, 20],
        "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": False,
        "cross_attention_dim": 1024,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1,
        "dual_cross_attention": False,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 2,
        "mid_block_scale_factor": 1,
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "num_class_embeds": None,
        "only_cross_attention": False,
        "out_channels": 4,
        "sample_size": size // 8,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "upcast_attention": v,  # SD 2.1 768-v needs fp32 attention scores in fp16
        "use_linear_projection": True,
    }
    vae = {
        "_class_name": "AutoencoderKL",
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "in_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "out_channels": 3,
        "sample_size": size,
        "scaling_factor": 0.18215,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
    }
    text_encoder = {
        "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model",
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "hidden_act": "gelu",
        "hidden_size": 1024,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 4096,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "num_attention_heads": 16,
        "num_hidden_layers": 23,  # SD 2.x conditions on OpenCLIP's penultimate layer; the 24th is not used
        "projection_dim": 512,
        "vocab_size": 49408,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 0,
    }
    scheduler = {
        "_class_name": "DDIMScheduler",
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "clip_sample": False,
        "num_train_timesteps": 1000,
        "prediction_type": "v_prediction" if v else "epsilon",
        "set_alpha_to_one": False,
        "skip_prk_steps": True,
        "steps_offset": 1,
        "trained_betas": None,
    }
    index = {
        "_class_name": "StableDiffusionPipeline",
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    return {"model_index.json": index, "unet/config.json": unet, "vae/config.json": vae,
            "text_encoder/config.json": text_encoder, "scheduler/scheduler_config.json": scheduler}


def clip_tokenizer_files(bpe_gz: bytes) -> tuple[dict[str, int], list[str]]:
    """vocab.json and merges.txt lines of CLIP's tokenizer from the gzipped BPE merge list CLIP ships."""
    lines = gzip.decompress(bpe_gz).decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]  # the first line is a header; CLIP uses 48894 merges
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    alphabet = list(bytes_to_unicode().values())  # CLIP's (GPT-2's) byte alphabet, in vocabulary order
    tokens = alphabet + [t + "</w>" for t in alphabet] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer(bpe_gz: bytes, out: Path) -> Path:
    """Write the SD 2.x CLIP tokenizer folder (pads with "!", as SD 2.x does) and check it on known ids."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_tokenizer_files(bpe_gz)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tok = CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"), pad_token="!", model_max_length=77)
    tok.save_pretrained(out)
    (out / "tokenizer.json").unlink(missing_ok=True)  # vocab.json + merges.txt are what both transformers read
    check_tokenizer(out)
    return out


def check_tokenizer(folder: Path) -> None:
    """AssertionError unless the tokenizer gives CLIP's ids and SD 2.x's padding."""
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(folder)
    text, ids = KNOWN_IDS
    got = tok(text).input_ids
    assert got == ids, f"tokenizer gives {got} for {text!r}, CLIP gives {ids}"
    assert len(tok) == 49408 and tok.pad_token_id == 0 and tok.model_max_length == 77


def write_all(wheel: Path, root: Path = SD2_DIR) -> None:
    with zipfile.ZipFile(wheel) as z:
        bpe = z.read("open_clip/bpe_simple_vocab_16e6.txt.gz")
    write_tokenizer(bpe, root / "tokenizer")
    for variant in VARIANTS:
        for rel, data in variant_configs(variant).items():
            path = root / variant / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {root}")


if __name__ == "__main__":
    write_all(Path(sys.argv[1]))
