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
