"""AnimateDiff's original motion-module layout: export, diffusers' own loader, --motion, per-frame GroupNorm."""

import json
import re

import pytest
import torch
from einops import repeat
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ldm_video import VideoUNetConfig, inflate_unet, load_base, save_temporal
from ldm_video.animatediff import layout_of, to_original
from ldm_video.checkpoint import load_motion
from ldm_video.cli import main

# the original layout, as A1111's sd-webui-animatediff reads it
ORIGINAL_KEY = re.compile(
    r"^(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.motion_modules\.\d+\.temporal_transformer\."
    r"(norm|proj_in|proj_out|transformer_blocks\.\d+\.(attention_blocks\.[01]\.(to_[qkv]|to_out\.0|pos_encoder)"
    r"|norms\.[01]|ff_norm|ff\.net\.(0\.proj|2)))\.(weight|bias|pe)$")


def _model(base, norm="all-frames", temporal_layers="attn", seed=0):
    torch.manual_seed(seed)  # the adapter's own initialisation too
    model = inflate_unet(load_base(base, components=("unet",)).unet,
                         VideoUNetConfig(temporal_layers=temporal_layers, motion_norm=norm))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.trainable_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def _inputs(f=4):
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 4, f, 8, 8, generator=g), torch.tensor([300]), torch.randn(1, 77, 32, generator=g)


@pytest.mark.slow
def test_export_writes_the_original_layout_and_diffusers_loads_it(tiny_base, tmp_path):
    from diffusers import MotionAdapter
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

    model = _model(tiny_base)
    save_temporal(model, tmp_path / "run")
    out = tmp_path / "mm.safetensors"
    assert main(["export", "--motion", str(tmp_path / "run"), "--format", "animatediff", "--out", str(out)]) == 0
    assert main(["export", "--motion", str(tmp_path / "run"), "--format", "motion-adapter",
                 "--out", str(tmp_path / "ma")]) == 0
    state = load_file(str(out))
    bad = [k for k in state if not ORIGINAL_KEY.match(k)]
    assert not bad, bad[:3]
    pe = [v for k, v in state.items() if k.endswith("pos_encoder.pe")]
    assert pe and all(v.shape[:2] == (1, 32) for v in pe)  # A1111 builds 32 frame positions
    # diffusers' converter maps every key back onto the MotionAdapter's names
    adapter = MotionAdapter.from_pretrained(tmp_path / "ma")
    wanted = {k for k in adapter.state_dict() if not k.endswith("pos_embed.pe")}
    assert set(convert_animatediff_checkpoint_to_diffusers(state)) == wanted
    # and diffusers' own single-file loader gives the MotionAdapter export, tensor for tensor
    loaded = MotionAdapter.from_single_file(str(out), config=str(tmp_path / "ma"), local_files_only=True)
    for key, value in adapter.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with safe_open(str(out), "pt") as f:
        header = f.metadata()
    assert header["ldm_video_motion_norm"] == "all-frames" and header["ldm_video_base_unet_hash"]


def test_motion_reads_an_original_layout_file(tiny_base, tmp_path):
    model = _model(tiny_base)
    save_temporal(model, tmp_path / "run")
    out = tmp_path / "mm.safetensors"
    assert main(["export", "--motion", str(tmp_path / "run"), "--format", "animatediff", "--out", str(out)]) == 0
    loaded = load_motion(out, load_base(tiny_base, components=("unet",)).unet).eval()
    assert loaded.config.motion_norm == "all-frames"  # the header says how it was trained
    x, t, text = _inputs(4)
    with torch.no_grad():
        assert (model(x, t, text).sample - loaded(x, t, text).sample).abs().max() <= 1e-6
    # a foreign file (no ldm-video header, a .ckpt pickle of tensors) runs with the original per-frame norm
    ckpt = tmp_path / "mm_foreign.ckpt"
    torch.save(load_file(str(out)), ckpt)
    foreign = load_motion(ckpt, load_base(tiny_base, components=("unet",)).unet).eval()
    assert foreign.config.motion_norm == "per-frame"
    with torch.no_grad():
        assert (_model(tiny_base, norm="per-frame")(x, t, text).sample - foreign(x, t, text).sample).abs().max() <= 1e-6


def test_per_frame_norm_matches_the_original_formula_and_differs_from_diffusers(tiny_base):
    """Per-frame: GroupNorm over (c/g, h, w) of each frame; all-frames: over (c/g, f, h, w) of the clip."""
    from ldm_video.temporal import PerFrameGroupNorm

    norm = torch.nn.GroupNorm(4, 8, eps=1e-6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 8, 5, 3, 3) + torch.linspace(0, 4, 5).view(1, 1, 5, 1, 1)  # frames with their own means
    per_frame = PerFrameGroupNorm(4, 8, eps=1e-6)
    per_frame.load_state_dict(norm.state_dict())
    for f in range(5):
        assert torch.allclose(per_frame(x)[:, :, f], norm(x[:, :, f]), atol=1e-5)
    assert not torch.allclose(per_frame(x), norm(x), atol=1e-2)
    x, t, text = _inputs(4)
    with torch.no_grad():
        a = _model(tiny_base, norm="all-frames")(x, t, text).sample
        b = _model(tiny_base, norm="per-frame")(x, t, text).sample
    assert (a - b).abs().max() > 1e-4  # same weights, another model
    assert set(_model(tiny_base, norm="per-frame").motion.state_dict()) == set(_model(tiny_base).motion.state_dict())


def test_mismatched_modules_are_refused_in_one_line(tiny_base, tmp_path, capsys):
    model = _model(tiny_base)
    state = to_original(model.motion.state_dict())
    # an SDXL-like module: one down block fewer
    sdxl = {k: v for k, v in state.items() if not k.startswith(("down_blocks.1.", "up_blocks.0."))}
    save_file(sdxl, str(tmp_path / "sdxl.safetensors"))
    # learnt (not sinusoidal) frame positions
    learnt = {k: (torch.randn_like(v) if k.endswith("pe") else v) for k, v in state.items()}
    save_file(learnt, str(tmp_path / "learnt.safetensors"))
    save_file({"foo.weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    for name, words in (("sdxl", "motion module for U-Net channels"), ("learnt", "sinusoidal"),
                        ("other", "not an AnimateDiff motion module")):
        code = main(["generate", "--base", tiny_base, "--motion", str(tmp_path / f"{name}.safetensors"),
                     "--prompt", "x", "--frames", "4", "--height", "32", "--width", "32", "--steps", "1",
                     "--out", str(tmp_path / f"{name}.mp4")])
        err = capsys.readouterr().err
        assert code == 2 and words in err.strip().splitlines()[-1] and "Traceback" not in err, err
        assert not (tmp_path / f"{name}.mp4").exists()


def test_layout_of_counts_blocks(tiny_base):
    layout = layout_of(to_original(_model(tiny_base).motion.state_dict()))
    unet = load_base(tiny_base, components=("unet",)).unet.config
    n = len(unet.block_out_channels)
    assert layout.down_channels == tuple(unet.block_out_channels)
    assert layout.down_modules == (unet.layers_per_block,) * n and layout.up_modules == (unet.layers_per_block + 1,) * n
    assert layout.mid_block and layout.transformer_layers == 1 and layout.pe_length == 32


@pytest.mark.parametrize("norm", ["all-frames", "per-frame"])
def test_exported_module_equals_diffusers_only_for_all_frames(tiny_base, tmp_path, norm):
    """diffusers' UNetMotionModel runs the exported module all-frames: exact for all-frames training only."""
    from diffusers import MotionAdapter, UNetMotionModel

    model = _model(tiny_base, norm=norm)
    save_temporal(model, tmp_path / "run")
    out = tmp_path / "mm.safetensors"
    assert main(["export", "--motion", str(tmp_path / "run"), "--format", "animatediff", "--out", str(out)]) == 0
    config = MotionAdapter.load_config(str(_adapter_dir(model, tmp_path)))
    adapter = MotionAdapter.from_single_file(str(out), config=str(tmp_path / "cfg"), local_files_only=True)
    assert dict(adapter.config)["block_out_channels"] == list(config["block_out_channels"])
    theirs = UNetMotionModel.from_unet2d(load_base(tiny_base, components=("unet",)).unet, adapter).eval()
    x, t, text = _inputs(4)
    with torch.no_grad():
        diff = (model(x, t, text).sample - theirs(x, t, repeat(text, "b s d -> (b f) s d", f=4)).sample).abs().max()
    assert (diff <= 1e-5) == (norm == "all-frames")


def _adapter_dir(model, tmp_path):
    model.motion.save_pretrained(tmp_path / "cfg")
    return tmp_path / "cfg"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from ldm_video.train.synthetic import write_test_video

    d = tmp_path_factory.mktemp("clips")
    for i in range(2):
        write_test_video(d / f"clip{i}.mp4", num_frames=6, height=32, width=32, seed=i)
        (d / f"clip{i}.txt").write_text(f"clip number {i}")
    return d


@pytest.mark.slow
@pytest.mark.parametrize("source", ["animatediff", "motion-adapter"])
def test_init_motion_starts_from_the_module_and_trains(tiny_base, tmp_path, clips, source):
    """An AnimateDiff file (or MotionAdapter folder) loads into train; step 0 is that module; training moves it."""
    from diffusers import MotionAdapter, UNetMotionModel

    from ldm_video.train.config import TrainConfig
    from ldm_video.train.setup import setup_run

    model = _model(tiny_base)
    model.motion.save_pretrained(tmp_path / "ma")
    module = tmp_path / "mm_sd_tiny.safetensors"
    save_file(to_original(model.motion.state_dict()), str(module))  # no ldm-video header: a foreign file
    init = str(module if source == "animatediff" else tmp_path / "ma")
    config = TrainConfig.from_flat(base=tiny_base, data=str(clips), output_dir=str(tmp_path / "out"), frames=4,
                         resolution="32", max_steps=2, lr=1e-3, temporal_layers="attn+conv", conv_depth=2,
                         init_motion=init)
    run = setup_run(config)
    theirs = UNetMotionModel.from_unet2d(load_base(tiny_base, components=("unet",)).unet,
                                         MotionAdapter.from_pretrained(tmp_path / "ma")).eval()
    x, t, text = _inputs(4)
    with torch.no_grad():
        ours = run.unwrapped.eval()(x, t, text).sample  # temporal convs start at zero: the module alone
        ref = theirs(x, t, repeat(text, "b s d -> (b f) s d", f=4)).sample
    assert (ours - ref).abs().max() <= 1e-5
    assert main(["train", "--base", tiny_base, "--data", str(clips), "--output-dir", str(tmp_path / "cli"),
                 "--frames", "4", "--resolution", "32", "--max-steps", "2", "--lr", "1e-2",
                 "--temporal-layers", "attn", "--init-motion", init, "--no-progress"]) == 0
    trained = load_file(str(tmp_path / "cli" / "temporal_layers.safetensors"))
    start = model.motion.state_dict()
    moved = [k for k, v in trained.items() if k.startswith("motion.") and not torch.equal(v, start[k[7:]])]
    assert moved  # it trained from the module
    assert max((trained[f"motion.{k}"] - v).abs().max() for k, v in start.items() if "pe" not in k) < 0.1


def test_init_motion_refuses_a_module_for_another_unet(tiny_base, tmp_path, clips, capsys):
    state = to_original(_model(tiny_base).motion.state_dict())
    wide = {k: torch.cat([v, v]) if v.ndim and not k.endswith("pe") else v for k, v in state.items()}
    save_file(wide, str(tmp_path / "wide.safetensors"))
    code = main(["train", "--base", tiny_base, "--data", str(clips), "--output-dir", str(tmp_path / "out"),
                 "--frames", "4", "--resolution", "32", "--max-steps", "1", "--init-motion",
                 str(tmp_path / "wide.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "channels" in err and "wide.safetensors" in err


def test_lora_alpha_and_motion_norm_reach_the_exports(tiny_base, tmp_path, clips, capsys):
    assert main(["train", "--base", tiny_base, "--data", str(clips), "--output-dir", str(tmp_path / "out"),
                 "--frames", "4", "--resolution", "32", "--max-steps", "1", "--temporal-layers", "attn",
                 "--lora-rank", "4", "--lora-alpha", "2", "--motion-norm", "per-frame", "--no-progress"]) == 0
    saved = json.loads((tmp_path / "out" / "temporal_config.json").read_text())["temporal"]
    assert saved["lora_alpha"] == 2.0 and saved["motion_norm"] == "per-frame"
    mm = tmp_path / "mm.safetensors"
    assert main(["export", "--motion", str(tmp_path / "out"), "--format", "animatediff", "--out", str(mm)]) == 0
    with safe_open(str(mm), "pt") as f:
        assert f.metadata()["ldm_video_motion_norm"] == "per-frame"
    assert load_motion(mm, load_base(tiny_base, components=("unet",)).unet).config.motion_norm == "per-frame"
    assert main(["export", "--motion", str(tmp_path / "out"), "--format", "motion-adapter",
                 "--out", str(tmp_path / "ma")]) == 0
    assert "per-frame motion GroupNorm" in capsys.readouterr().err  # diffusers would run it all-frames
    out = tmp_path / "k.safetensors"
    assert main(["export", "--motion", str(tmp_path / "out"), "--format", "kohya-lora", "--out", str(out)]) == 0
    alphas = {float(v) for k, v in load_file(str(out)).items() if k.endswith(".alpha")}
    assert alphas == {2.0}
    assert main(["export", "--motion", str(tmp_path / "out"), "--format", "diffusers-lora",
                 "--out", str(tmp_path / "d.safetensors")]) == 0
    with safe_open(str(tmp_path / "d.safetensors"), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["lora_adapter_metadata"])["unet.lora_alpha"] == 2.0
