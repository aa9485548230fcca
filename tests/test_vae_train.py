"""`ldm-video train-vae` and `eval-vae` end to end on a messy folder of tiny synthetic videos."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from ldm_video.cli import main
from ldm_video.vae import CausalVAE, TemporalDecoderVAE, load_base_vae, load_video_vae
from ldm_video.vae.eval_vae import load_clips


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """Three good clips (moving squares), a still image, and bad items the data pipeline must skip."""
    from ldm_video.train.synthetic import write_test_image, write_test_video

    d = tmp_path_factory.mktemp("messy-videos")
    for i in range(3):
        write_test_video(d / f"clip{i}.mp4", num_frames=12, height=32, width=40, seed=i)
    (d / "clip0.txt").write_text("a square moving right")
    write_test_image(d / "still.png", mode="RGBA", height=32, width=32)
    (d / "empty.mp4").write_bytes(b"")
    (d / "corrupt.mkv").write_bytes(b"not a video " * 50)
    write_test_video(d / "short.mp4", num_frames=3, height=32, width=32)
    return d


def _train(kind, tiny_base, messy, out, steps, *extra):
    return main(["train-vae", "--kind", kind, "--base", tiny_base, "--data", str(messy), "--output-dir", str(out),
                 "--frames", "5", "--resolution", "32", "--max-steps", str(steps), "--no-progress", *extra])


def _recon_l1(vae, clips) -> float:
    with torch.no_grad():
        return sum(float((vae(c, sample=False)[0] - c).abs().mean()) for c in clips) / len(clips)


@pytest.mark.parametrize("kind,lr,extra", [("temporal-decoder", "3e-3", ()), ("causal3d", "1e-3", ()),
                                           ("causal3d", "1e-3", ("--no-freeze-encoder",))])
@pytest.mark.slow
def test_train_vae_lowers_reconstruction_loss(kind, lr, extra, tiny_base, messy, tmp_path, caplog):
    out = tmp_path / kind
    assert _train(kind, tiny_base, messy, out, 16, "--lr", lr, "--checkpoint-every", "8", *extra) == 0
    assert "skipped 3 bad items" in caplog.text  # corrupt, empty, too short
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 17))
    assert ("kl" in log[0]) == bool(extra)  # the KL term trains the encoder, frozen in causal3d by default
    trained = load_video_vae(out / "vae", base=tiny_base)
    start = TemporalDecoderVAE(load_base_vae(tiny_base)) if kind == "temporal-decoder" else CausalVAE(
        load_base_vae(tiny_base))
    clips = load_clips(str(messy), 5, "32", 1, 3)  # center crops of the three good clips
    before, after = _recon_l1(start.eval(), clips), _recon_l1(trained, clips)
    assert after < 0.9 * before, (before, after)
    # checkpoints are loadable video VAEs, the newest two are kept
    steps = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert steps == ["step-0000008", "step-0000016"]
    assert isinstance(load_video_vae(out / "checkpoints" / steps[-1], base=tiny_base), type(trained))


@pytest.mark.slow
def test_freeze_encoder_trains_the_decoder_and_keeps_the_latents(tiny_base, messy, tmp_path, capsys):
    """causal3d --freeze-encoder: the encoder stays the inflated one bit for bit (so do the latents the image
    U-Net reads), the decoder trains, and there is no KL term."""
    out = tmp_path / "c3d"
    assert _train("causal3d", tiny_base, messy, out, 4, "--lr", "1e-3") == 0  # frozen: causal3d's default
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert "kl" not in log[0] and len(log) == 4
    trained, start = load_video_vae(out, base=tiny_base), CausalVAE(load_base_vae(tiny_base)).eval()
    a, b = start.state_dict(), trained.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("encoder."))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("decoder."))
    clip = load_clips(str(messy), 5, "32", 1, 1)[0]
    assert torch.equal(start.encode(clip), trained.encode(clip))
    # each kind has its own default learning rate (the measured best), and a run records the one it used
    from ldm_video.vae.train_vae import TrainVAEConfig

    assert TrainVAEConfig.from_flat(kind="causal3d").run.lr == 3e-5
    assert TrainVAEConfig.from_flat(kind="temporal-decoder").run.lr == 1e-4
    assert TrainVAEConfig.from_flat(kind="causal3d").vae.freeze_encoder and not TrainVAEConfig.from_flat().vae.freeze_encoder
    assert "lr: 0.001" in (out / "train_config.yaml").read_text()
    assert _train("temporal-decoder", tiny_base, messy, tmp_path / "td", 1, "--freeze-encoder") == 2
    assert "--freeze-encoder applies to --kind causal3d only" in capsys.readouterr().err
    assert _train("causal3d", tiny_base, messy, tmp_path / "kl", 1, "--kl-weight", "1e-3") == 2  # frozen by default
    assert "add --no-freeze-encoder" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_continues_exactly(tiny_base, messy, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ("--lr", "3e-3", "--checkpoint-every", "2", "--train-decoder", "--gradient-checkpointing")
    assert _train("temporal-decoder", tiny_base, messy, straight, 4, *common) == 0
    assert _train("temporal-decoder", tiny_base, messy, split, 2, *common) == 0
    assert _train("temporal-decoder", tiny_base, messy, split, 2, *common) == 2  # refuses to mix two runs
    assert _train("temporal-decoder", tiny_base, messy, split, 4, *common, "--resume") == 0  # bare: latest
    a = load_file(str(straight / "vae" / "video_vae.safetensors"))
    b = load_file(str(split / "vae" / "video_vae.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("vae.decoder.") for k in a)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    log = [json.loads(line)["step"] for line in (split / "train_log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3, 4]


def test_bad_flags_are_one_line_errors(tiny_base, messy, tmp_path, capsys):
    assert main(["train-vae", "--kind", "causal3d", "--base", tiny_base, "--data", str(messy), "--output-dir",
                 str(tmp_path / "x"), "--frames", "8", "--resolution", "32", "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nearest valid lengths: 5 or 9" in err and len(err.splitlines()) == 1
    assert _train("causal3d", tiny_base, messy, tmp_path / "y", 1, "--train-decoder") == 2
    assert "--train-decoder applies to --kind temporal-decoder only" in capsys.readouterr().err
    assert _train("temporal-decoder", tiny_base, messy, tmp_path / "z", 1, "--kl-weight", "1e-3") == 2
    assert _train("temporal-decoder", tiny_base, tmp_path / "missing", tmp_path / "w", 1) == 2
    assert "data folder not found" in capsys.readouterr().err
    # the one resume rule: --resume latest with no checkpoint yet starts from scratch, as in train
    assert _train("temporal-decoder", tiny_base, messy, tmp_path / "v", 1, "--resume") == 0
    assert (tmp_path / "v" / "vae" / "video_vae.json").is_file()
    # LPIPS is only used when the package and its weights are on this machine; otherwise a clear error
    assert _train("temporal-decoder", tiny_base, messy, tmp_path / "u", 1, "--lpips-weight", "0.1") == 2
    assert "lpips" in capsys.readouterr().err.lower()


@pytest.mark.slow
def test_ctrl_c_writes_a_checkpoint_and_resume_matches_an_uninterrupted_run(tiny_base, messy, tmp_path,
                                                                           monkeypatch, capsys):
    from ldm_video.vae import train_vae

    common = ("--lr", "3e-3", "--checkpoint-every", "4", "--grad-accum", "2")
    assert _train("causal3d", tiny_base, messy, tmp_path / "full", 4, *common) == 0
    calls = {"n": 0}
    real = train_vae.l1_loss

    def interrupting_l1(recon, video):
        calls["n"] += 1
        if calls["n"] == 3:  # first micro-batch of step 2: Ctrl-C arrives mid-step
            os.kill(os.getpid(), signal.SIGINT)
        return real(recon, video)

    monkeypatch.setattr(train_vae, "l1_loss", interrupting_l1)
    assert _train("causal3d", tiny_base, messy, tmp_path / "part", 4, *common) == 130
    assert "checkpoint written to" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "part" / "checkpoints").iterdir()] == ["step-0000002"]
    assert not (tmp_path / "part" / "vae").exists()
    monkeypatch.setattr(train_vae, "l1_loss", real)
    assert _train("causal3d", tiny_base, messy, tmp_path / "part", 4, *common, "--resume", "latest") == 0
    a = load_file(str(tmp_path / "full" / "vae" / "video_vae.safetensors"))
    b = load_file(str(tmp_path / "part" / "vae" / "video_vae.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit on CPU
    logs = [[json.loads(line) for line in (tmp_path / r / "train_log.jsonl").read_text().splitlines()]
            for r in ("full", "part")]
    assert logs[0] == [{k: v for k, v in r.items()} for r in logs[1]]  # one history, not two appended
    # the run folder is what generate --vae / train --vae read
    assert isinstance(load_video_vae(tmp_path / "part", base=tiny_base), CausalVAE)


def test_one_grammar_refusals_and_old_spellings(tiny_base, messy, tmp_path, capsys):
    if not torch.cuda.is_available():
        assert _train("temporal-decoder", tiny_base, messy, tmp_path / "a", 1, "--mixed-precision", "fp16") == 2
        assert "fp16 needs a CUDA GPU" in capsys.readouterr().err
    assert _train("temporal-decoder", tiny_base, messy, tmp_path / "b", 1, "--keep-checkpoints", "0") == 2
    assert "--keep-checkpoints must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())
    # the old spellings still work for one release, each with a one-line notice
    assert main(["train-vae", "--kind", "temporal-decoder", "--base", tiny_base, "--data", str(messy), "--output",
                 str(tmp_path / "old"), "--frames", "5", "--resolution", "32", "--steps", "1",
                 "--gradient-accumulation", "1", "--no-progress"]) == 0
    err = capsys.readouterr().err
    for old, new in (("--output", "--output-dir"), ("--steps", "--max-steps"),
                     ("--gradient-accumulation", "--grad-accum")):
        assert f"{old} is deprecated and will be removed in the next release; use {new}" in err
    assert (tmp_path / "old" / "vae" / "video_vae.json").is_file()
    # the saved config reproduces the run: --config OUT/train_config.yaml
    from ldm_video.train.settings import load_yaml
    from ldm_video.vae.train_vae import TrainVAEConfig

    saved = TrainVAEConfig.from_flat(load_yaml(tmp_path / "old" / "train_config.yaml", TrainVAEConfig))
    assert saved.run.max_steps == 1 and saved.run.output_dir == str(tmp_path / "old") and saved.vae.kind == "temporal-decoder"
    # --overwrite starts afresh: the old log does not carry over
    assert _train("temporal-decoder", tiny_base, messy, tmp_path / "old", 2, "--overwrite") == 0
    log = [json.loads(line)["step"] for line in (tmp_path / "old" / "train_log.jsonl").read_text().splitlines()]
    assert log == [1, 2]


def test_eval_vae_reports_both_vaes(tiny_base, messy, tmp_path, capsys):
    folder = TemporalDecoderVAE(load_base_vae(tiny_base), base=tiny_base).save(tmp_path / "td")
    out_json = tmp_path / "scores.json"
    assert main(["eval-vae", "--vae", str(folder), "--data", str(messy), "--frames", "5", "--resolution", "32",
                 "--clips", "2", "--json", str(out_json)]) == 0
    table = capsys.readouterr().out
    assert "PSNR" in table and "temporal-decoder" in table and "2d" in table
    scores = json.loads(out_json.read_text())
    assert [s["kind"] for s in scores] == ["2d", "temporal-decoder"] and all(s["clips"] == 2 for s in scores)
    # at initialisation the temporal decoder is the 2D decoder: identical scores
    for key in ("psnr", "ssim", "flicker", "flicker_error"):
        assert scores[0][key] == pytest.approx(scores[1][key], abs=1e-4)
    assert scores[0]["flicker_input"] > 0
    assert main(["eval-vae", "--vae", str(folder), "--data", str(messy), "--frames", "5", "--clips", "0"]) == 2
