"""The top-level command line: `ldm-video --help` lists every command without importing torch; each command's
own `--help` works."""

import subprocess
import sys

import pytest

from ldm_video.cli import COMMANDS, main


def test_top_level_help_does_not_import_torch():
    code = ("import sys\nfrom ldm_video.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\nprint('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("ok")
    assert all(name in out for name in COMMANDS)  # every command is listed with its help line


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: ldm-video " + command in capsys.readouterr().out


def test_unknown_command_is_named(capsys):
    with pytest.raises(SystemExit):
        main(["genrate"])
    assert "invalid choice: 'genrate'" in capsys.readouterr().err


@pytest.mark.parametrize("words", [["prepare", "--data", "d"], ["toy", "pretrain"]])
def test_a_required_output_folder_takes_either_spelling(words, capsys):
    """`--output-dir` is required, and its old spelling (kept for this release) satisfies it alone."""
    from ldm_video.cli import build_parser

    parser = build_parser(only=words[0])
    old = "--output" if words[0] == "prepare" else "--out"
    new, dep = (parser.parse_args([*words, flag, "runs/c"]) for flag in ("--output-dir", old))
    assert vars(new) == vars(dep) and "runs/c" in vars(new).values()
    assert "is deprecated" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(words)
    assert "one of the arguments --output-dir is required" in capsys.readouterr().err


def test_written_files_get_the_usual_modes(tiny_base, tmp_path):
    """Files and folders written through temporary names get umask modes (0644 / 0755), not mkstemp's 0600."""
    import os
    import stat

    from ldm_video import inflate_unet, load_base, save_temporal

    old = os.umask(0o022)
    try:
        save_temporal(inflate_unet(load_base(tiny_base, components=("unet",)).unet), tmp_path / "run")
        assert main(["export", "--motion", str(tmp_path / "run"), "--format", "motion-adapter", "--drop-temporal-conv",
                     "--out", str(tmp_path / "ma")]) == 0
    finally:
        os.umask(old)
    for path in [*(tmp_path / "run").iterdir(), tmp_path / "ma", *(tmp_path / "ma").iterdir()]:
        expected = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_unwritable_outputs_and_truncated_weights_are_one_line_errors(tiny_base, tmp_path, capsys):
    """An output under a regular file cannot be written: said before any work, naming the path."""
    from ldm_video import inflate_unet, load_base, save_temporal
    from ldm_video.train.synthetic import write_test_video

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    save_temporal(inflate_unet(load_base(tiny_base, components=("unet",)).unet), tmp_path / "run")
    data = tmp_path / "data"
    data.mkdir()
    write_test_video(data / "a.mp4", num_frames=6, height=32, width=32, seed=0)
    cases = {
        "generate": ["generate", "--base", tiny_base, "--prompt", "x", "--steps", "1", "--height", "16", "--width",
                     "16", "--frames", "2", "--out", str(blocker / "v.mp4")],
        "export": ["export", "--motion", str(tmp_path / "run"), "--format", "native", "--out", str(blocker / "n")],
        "train": ["train", "--base", tiny_base, "--data", str(data), "--output-dir", str(blocker / "run"),
                  "--frames", "4", "--resolution", "32", "--max-steps", "1"],
        "eval-vae": ["eval-vae", "--vae", tiny_base, "--data", str(data), "--frames", "4", "--resolution", "32",
                     "--clips", "1", "--json", str(blocker / "scores.json")],
    }
    for name, argv in cases.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert str(blocker) in err[-1] and "Traceback" not in "\n".join(err), (name, err)
    weights = tmp_path / "run" / "temporal_layers.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    assert main(["export", "--motion", str(tmp_path / "run"), "--format", "native", "--out", str(tmp_path / "n")]) == 2
    assert "unreadable safetensors file" in capsys.readouterr().err


def _one_line(capsys) -> str:
    text = capsys.readouterr().err
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip() and "it/s]" not in line]  # not loading bars
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.slow
def test_runs_and_caches_are_never_mixed(tiny_base, tiny_base_v, tmp_path, capsys):
    """A refused resume leaves the run's files as they were; a latent cache made from other data or another
    base, temporal layers trained for the other objective and over-long clips are one-line errors (exit 2)."""
    from ldm_video.train.synthetic import write_test_video

    data, other = tmp_path / "data", tmp_path / "other"
    for i in range(2):
        write_test_video(data / f"c{i}.mp4", num_frames=6, height=32, width=32, seed=i)
        write_test_video(other / f"c{i}.mp4", num_frames=6, height=32, width=32, seed=10 + i)
    out = tmp_path / "run"
    common = ["--frames", "4", "--resolution", "32", "--images", "off", "--no-progress"]
    assert main(["train", "--base", tiny_base, "--data", str(data), "--output-dir", str(out), "--cache-latents",
                 "--max-steps", "2", *common]) == 0
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # a resume under other settings: refused, and nothing of the run is rewritten (train_config.yaml included)
    assert main(["train", "--base", tiny_base, "--data", str(data), "--output-dir", str(out), "--cache-latents",
                 "--max-steps", "4", "--batch-size", "2", "--resume", "latest", *common]) == 2
    assert "--batch-size (1 in the checkpoint, 2 now)" in _one_line(capsys)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
    # OUTPUT_DIR/latent-cache was made from --data DATA: --data OTHER must not train on it
    assert main(["train", "--base", tiny_base, "--data", str(other), "--output-dir", str(out), "--cache-latents",
                 "--max-steps", "2", "--overwrite", *common]) == 2
    assert "--data" in (err := _one_line(capsys)) and "prepare a new cache" in err
    # ... nor another base
    assert main(["train", "--base", tiny_base_v, "--data", str(data), "--output-dir", str(out), "--cache-latents",
                 "--max-steps", "2", "--overwrite", *common]) == 2
    assert "--base" in _one_line(capsys)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files  # --overwrite deletes only once set up
    # layers trained on an epsilon base do not load onto a v-prediction base of the same shape
    assert main(["generate", "--base", tiny_base_v, "--motion", str(out), "--prompt", "x", "--frames", "4",
                 "--height", "32", "--width", "32", "--steps", "2", "--out", str(tmp_path / "v.mp4")]) == 2
    assert "trained on a epsilon base, this base predicts v_prediction" in _one_line(capsys)
    assert not (tmp_path / "v.mp4").exists()
    # --cache-latents would do nothing next to --cache
    assert main(["train", "--base", tiny_base, "--cache", str(out / "latent-cache"), "--cache-latents",
                 "--output-dir", str(tmp_path / "c"), *common]) == 2
    assert "give one of them" in _one_line(capsys)
    # a clip no training step can hold
    assert main(["train", "--base", tiny_base, "--data", str(data), "--output-dir", str(tmp_path / "long"),
                 "--frames", "5000", "--max-steps", "1"]) == 2
    assert "--frames 5000: training clips are at most 256 frames" in _one_line(capsys)
    assert not (tmp_path / "long").exists()


def test_library_errors_become_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys, tmp_path):
    import errno

    from ldm_video import export as export_module

    def disk_full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out.safetensors"))

    monkeypatch.setattr(export_module, "run", disk_full)
    args = ["export", "--motion", str(tmp_path), "--format", "native", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert _one_line(capsys) == f"ldm-video export: error: {tmp_path / 'out.safetensors'}: No space left on device"

    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(export_module, "run", bug)
    with pytest.raises(ZeroDivisionError):
        main(args)


def test_motion_module_shape_flags_reach_the_saved_layers(tiny_base, tmp_path):
    import json

    from ldm_video.train.synthetic import write_test_video

    write_test_video(tmp_path / "data" / "c.mp4", num_frames=6, height=32, width=32)
    out = tmp_path / "run"
    assert main(["train", "--base", tiny_base, "--data", str(tmp_path / "data"), "--output-dir", str(out),
                 "--frames", "4", "--resolution", "32", "--images", "off", "--max-steps", "1", "--no-progress",
                 "--temporal-layers", "attn", "--attention-layers", "2", "--no-mid-block", "--max-frames", "48"]) == 0
    saved = json.loads((out / "temporal_config.json").read_text())["temporal"]
    assert (saved["attention_layers"], saved["mid_block"], saved["max_frames"]) == (2, False, 48)
