"""The command line through click's test runner and through main(): outputs, config, errors, exit codes."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from gatys.cli import cli, main
from gatys.images import read_metadata

FAST = ["--size", "32", "--iterations", "3", "--precision", "fp32", "--device", "cpu", "-q"]


def run(*args):
    return CliRunner().invoke(cli, ["transfer", *map(str, args)], catch_exceptions=False)


def run_main(capsys, *args):
    """main() as the console script runs it: returns (exit status, stderr lines)."""
    with pytest.raises(SystemExit) as exit_info:
        main([*map(str, args)])
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()


def test_transfer_writes_image_metadata_and_manifest(content_path, style_path, tmp_path):
    out = tmp_path / "out.png"
    result = run(content_path, style_path, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (32, 24)
    assert read_metadata(out)["settings"]["iterations"] == 3
    manifest = json.loads((tmp_path / "out.json").read_text())
    assert manifest["settings"]["size"] == 32 and manifest["seed"] == 0
    assert len(manifest["trace"][0]["losses"]["total"]) == 3
    assert len(manifest["weights"]["sha256"]) == 64
    assert manifest["inputs"]["styles"][0]["path"] == str(style_path)
    assert manifest["timings"]["seconds_per_evaluation"][0] > 0
    assert manifest["versions"]["torch"]


def test_no_manifest_and_snapshots(content_path, style_path, tmp_path):
    out = tmp_path / "out.jpg"
    result = run(content_path, style_path, "-o", out, *FAST, "--no-manifest", "--save-every", "2")
    assert result.exit_code == 0, result.output
    assert out.exists() and not (tmp_path / "out.json").exists()
    assert (tmp_path / "out_s1_00002.jpg").exists()


def test_config_file_with_flags_winning(content_path, style_path, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(f'content = "{content_path}"\nstyle = ["{style_path}"]\nsize = 24\n'
                      f'iterations = 2\nstyle-weight = 3.0\nquiet = true\nprecision = "fp32"\n'
                      'loss = ["gram", "moments"]\ncuda-graph = false\n')
    out = tmp_path / "out.png"
    result = CliRunner().invoke(cli, ["transfer", "--config", str(config), "-o", str(out), "--size", "40"])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "out.json").read_text())["settings"]
    assert (settings["size"], settings["iterations"], settings["style_weight"]) == (40, 2, 3.0)
    assert settings["style_losses"] == ["gram", "moments"] and settings["cuda_graph"] is False
    result = CliRunner().invoke(cli, ["transfer", "--config", str(config), "-o", str(out), "--cuda-graph"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out.json").read_text())["settings"]["cuda_graph"] is True


def test_progress_lines_when_not_a_terminal(content_path, style_path, tmp_path):
    result = CliRunner().invoke(cli, ["transfer", str(content_path), str(style_path), "-o", str(tmp_path / "o.png"),
                                      "--size", "32", "--iterations", "2", "--precision", "fp32"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(line.startswith("scale 1/1 32x24 iteration 2/2") and "style" in line for line in lines)


@pytest.mark.parametrize("case", ["missing", "directory", "corrupt", "bad-size", "bad-loss", "same-as-input",
                                  "bad-extension", "no-style"])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(capsys, content_path, style_path, tmp_path, case):
    out = tmp_path / "existing.png"
    out.write_bytes(b"finished work")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG not really")
    args = {
        "missing": [tmp_path / "missing.png", style_path, "-o", out],
        "directory": [tmp_path, style_path, "-o", out],
        "corrupt": [content_path, corrupt, "-o", out],
        "bad-size": [content_path, style_path, "-o", out, "--size", "abc"],
        "bad-loss": [content_path, style_path, "-o", out, "--loss", "gram:sigma=2"],
        "same-as-input": [content_path, style_path, "-o", content_path],
        "bad-extension": [content_path, style_path, "-o", tmp_path / "out.gif"],
        "no-style": [content_path, "-o", out],
    }[case]
    before = content_path.read_bytes()
    code, lines = run_main(capsys, "transfer", *FAST, *args)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("gatys: error:"), lines
    assert out.read_bytes() == b"finished work"
    assert content_path.read_bytes() == before
    assert not (tmp_path / "existing.json").exists()


def test_interrupt_saves_the_best_image_and_exits_130(monkeypatch, capsys, content_path, style_path, tmp_path):
    from gatys import callbacks

    def interrupt(self, progress):
        if progress.iteration == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.ProgressReporter, "__call__", interrupt)
    out = tmp_path / "out.png"
    code, lines = run_main(capsys, "transfer", content_path, style_path, "-o", out, "--size", "32",
                           "--iterations", "50", "--precision", "fp32")
    assert code == 130
    assert Image.open(out).size == (32, 24)
    assert json.loads((tmp_path / "out.json").read_text())["interrupted"] is True
    assert "interrupted" in lines[-1]


def test_losses_and_info_commands():
    listing = CliRunner().invoke(cli, ["losses"])
    assert listing.exit_code == 0
    assert "gram" in listing.output and "moments (alias bn)" in listing.output
    info = CliRunner().invoke(cli, ["info", "--device", "cpu"])
    assert info.exit_code == 0 and "device: cpu" in info.output
