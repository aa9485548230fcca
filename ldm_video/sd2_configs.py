"""The diffusers configs of Stable Diffusion 2.1-base (epsilon, 512 px) and 2.1 (v-prediction, 768 px), the one
home of the SD 2.1 architecture in this package, and the script that writes their CLIP tokenizer.

The package ships them under `ldm_video/sd2/<variant>/` (configs and CLIP tokenizer files only, no weights):
`--base FILE.safetensors` loads a single-file checkpoint with `config=` pointing there, so diffusers'
`from_single_file` never looks at the hub (without it diffusers takes every SD 2.x file for the 768-v model);
`plan` reads them for the SD 2.1 hub ids, and the tests and benchmarks build real-sized models from them
(`shipped_config`). SD 2.1 768-v differs only in `upcast_attention` (fp32 attention scores in fp16), the
sample sizes and the scheduler's prediction type; its text encoder has 23 layers because SD 2.x conditions on
OpenCLIP's penultimate layer. The tokenizer is CLIP's byte-level BPE (OpenCLIP ViT-H/14 uses CLIP's
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
VARIANT_OF = {"epsilon": "2.1-base", "v_prediction": "2.1-768-v"}  # the base's prediction type -> its variant
# CLIP's ids for "a photo of a cat" (start, a, photo, of, a, cat, end)
KNOWN_IDS = ("a photo of a cat", [49406, 320, 1125, 539, 320, 2368, 49407])


def shipped_config(component: str, prediction_type: str = "epsilon") -> dict:
    """The shipped diffusers config of one SD 2.1 component ("unet", "vae", "text_encoder"; "scheduler" is
    "scheduler/scheduler_config.json"), of 2.1-base (epsilon, 512 px) or 2.1 (v_prediction, 768 px), without
    diffusers' `_class_name` / `_diffusers_version` bookkeeping: `UNet2DConditionModel(**shipped_config("unet"))`
    is the real SD 2.1 U-Net (865.9M parameters)."""
    variant = VARIANT_OF[prediction_type]
    name = "scheduler/scheduler_config.json" if component == "scheduler" else f"{component}/config.json"
    data = json.loads((SD2_DIR / variant / name).read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


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
    print(f"wrote {root / 'tokenizer'}")


if __name__ == "__main__":
    write_all(Path(sys.argv[1]))
