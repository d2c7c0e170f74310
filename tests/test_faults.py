"""Fault injection, end to end through the command line at tiny sizes (docs/reliability.md lists each case).

Bad input: one line on stderr, exit status 2, no traceback, nothing written. Faults during a
run: survived where possible, otherwise the best image kept and the reason said. Signals:
the best image and a manifest marked interrupted (SIGINT 130, SIGTERM 143); SIGKILL leaves
nothing that a later run takes as finished.
"""
from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st
from PIL import Image

import gatys.images
import losses
from gatys.cli import cli, main
from gatys.config import TransferConfig
from gatys.errors import GatysError

TINY = ["--size", "32", "--iterations", "2", "--precision", "fp32", "--device", "cpu", "-q"]


def _transfer(capsys, *args):
    """main() as the console script runs it: (exit status, stderr lines)."""
    try:
        main(["transfer", *map(str, args)])
        status = 0
    except SystemExit as exit_info:
        status = exit_info.code
    return status, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def folder(tmp_path):
    """A working folder with a good content and style, and an earlier result that must survive."""
    rng = np.random.default_rng(0)
    picture = (rng.random((36, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "content.png")
    Image.fromarray(picture[::-1]).save(tmp_path / "style.png")
    (tmp_path / "out.png").write_bytes(b"finished work")
    return tmp_path


def _unchanged(folder, before):
    assert sorted(path.name for path in folder.iterdir()) == before
    assert (folder / "out.png").read_bytes() == b"finished work"


def _make_bad_input(folder, case):
    picture = np.zeros((36, 48, 3), np.uint8)
    path = folder / {"missing": "missing.png", "directory": "adir", "empty": "empty.png", "truncated": "cut.jpg",
                     "not-an-image": "notes.png", "bomb": "big.png", "one-pixel": "dot.png",
                     "thin": "thin.png"}[case]
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        Image.fromarray(picture).save(folder / "whole.jpg")
        whole = (folder / "whole.jpg").read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
        (folder / "whole.jpg").unlink()
    elif case == "not-an-image":
        path.write_text("these are notes, not pixels")
    elif case == "bomb":
        Image.new("RGB", (60, 60)).save(path)  # over the limit the test sets
    elif case == "one-pixel":
        Image.fromarray(picture[:1, :1]).save(path)
    elif case == "thin":
        Image.fromarray(np.zeros((4, 300, 3), np.uint8)).save(path)
    return path


@pytest.mark.parametrize("where", ["content", "style"])
@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"), ("directory", "it is a directory"), ("empty", "not an image Pillow can identify"),
    ("truncated", "corrupt or unreadable"), ("not-an-image", "not an image Pillow can identify"),
    ("bomb", "over the decompression-bomb limit of 2000; resize it first, or raise the limit with "
             "GATYS_MAX_IMAGE_PIXELS=N"),
    ("one-pixel", "is 1×1 px: too small for layer relu5_1"), ("thin", "is 300×4 px: too small for layer relu5_1"),
])
def test_a_bad_image_is_one_line_exit_2_and_nothing_written(capsys, folder, monkeypatch, where, case, message):
    monkeypatch.setenv("GATYS_MAX_IMAGE_PIXELS", "2000")  # the good images are 48×36 = 1728 px
    bad = _make_bad_input(folder, case)
    before = sorted(path.name for path in folder.iterdir())
    images = [bad, folder / "style.png"] if where == "content" else [folder / "content.png", bad]
    status, lines = _transfer(capsys, *images, "-o", folder / "out.png", *TINY)
    assert status == 2 and len(lines) == 1, lines
    assert bad.name in lines[0] and message in lines[0]
    _unchanged(folder, before)


@pytest.mark.parametrize("kind", ["greyscale", "cmyk", "palette", "16-bit", "rgba", "animated-gif"])
def test_every_image_mode_runs(capsys, folder, kind):
    picture = Image.open(folder / "content.png")
    path = folder / ("odd.gif" if kind == "animated-gif" else "odd.jpg" if kind == "cmyk" else "odd.png")
    if kind == "greyscale":
        picture.convert("L").save(path)
    elif kind == "cmyk":
        picture.convert("CMYK").save(path)
    elif kind == "palette":
        picture.convert("P").save(path)
    elif kind == "16-bit":
        Image.fromarray(np.asarray(picture.convert("L")).astype(np.uint16) * 257).save(path)
    elif kind == "rgba":
        picture.convert("RGBA").save(path)
    else:
        picture.save(path, save_all=True, append_images=[picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    status, lines = _transfer(capsys, path, folder / "style.png", "-o", folder / "result.png", *TINY)
    assert status == 0, lines
    assert Image.open(folder / "result.png").size == (32, 24)


@pytest.mark.parametrize("options, message", [
    (["--loss", "grams"], "unknown style loss 'grams'; available: gram, "),
    (["--loss", "gram:weight"], "expected key=value"),
    (["--loss", "gram:colour=2"], "has no parameter 'colour'; valid:"),
    (["--style-layers", "relu9_1"], "relu9_1"),
    (["--style-weight", "-1"], "style-weight must be a finite number ≥ 0"),
    (["--content-weight", "nan"], "content-weight must be a finite number ≥ 0"),
    (["--tv-weight", "inf"], "tv-weight must be a finite number ≥ 0"),
    (["--size", "0"], "size must be a whole number ≥ 1"),
    (["--size", "100000"], "even in tiles"),
    (["--iterations", "0"], "iterations must be whole numbers ≥ 1"),
    (["--iterations", "-3"], "iterations must be whole numbers ≥ 1"),
])
def test_a_bad_option_is_one_line_exit_2_and_nothing_written(capsys, folder, options, message):
    before = sorted(path.name for path in folder.iterdir())
    status, lines = _transfer(capsys, folder / "content.png", folder / "style.png", "-o", folder / "out.png",
                              *TINY, *options)
    assert status == 2 and len(lines) == 1 and message in lines[0], lines
    _unchanged(folder, before)


def test_an_absurd_size_names_what_it_needs_and_the_budget(capsys, folder):
    status, lines = _transfer(capsys, folder / "content.png", folder / "style.png", "-o", folder / "big.png",
                              *TINY, "--size", "100000")
    assert status == 2 and "does not fit in" in lines[0] and "even in tiles" in lines[0], lines
    assert "--max-memory" in lines[0]


@pytest.mark.parametrize("output, message", [
    ("nowhere/out.png", "does not exist"), ("content.png", "would overwrite the input"),
    ("unwritable/out.png", "is not writable"),
])
def test_a_bad_output_is_one_line_exit_2(capsys, folder, monkeypatch, output, message):
    (folder / "unwritable").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: "unwritable" not in str(path) and real_access(path, mode))
    status, lines = _transfer(capsys, folder / "content.png", folder / "style.png", "-o", folder / output, *TINY)
    assert status == 2 and len(lines) == 1 and message in lines[0], lines


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("gramsdlinpoyt-:=,+.0123456789 wehbcaxuf"), max_size=30))
def test_any_loss_spec_is_a_loss_or_a_clear_error(spec):
    try:
        TransferConfig(style_losses=(spec,))
    except GatysError as error:
        assert str(error) and "\n" not in str(error)


_FLAGS = ["--size", "--iterations", "--scales", "--octaves", "--style-weight", "--loss", "--style-layers",
          "--style-blend-weights", "--init", "--optimizer", "--precision", "--learning-rate", "--seed", "--pooling"]


@pytest.fixture(scope="module")
def combo_image(tmp_path_factory):
    path = tmp_path_factory.mktemp("combo") / "c.png"
    Image.new("RGB", (48, 36), "teal").save(path)
    return path


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_FLAGS),
                          st.one_of(st.sampled_from(["0", "-1", "1e9", "nan", "x", "", "gram", "1,2", "adam",
                                                     "relu1_1", "bf16", "noise"]),
                                    st.integers(-5, 70).map(str))), max_size=4))
def test_any_option_combination_runs_or_is_one_clear_error(combo_image, flags):
    """Through click's parsing and the config's validation; the run itself is replaced by a no-op."""
    arguments = ["transfer", str(combo_image), str(combo_image), "-o", str(combo_image.with_name("o.png")), "-q"]
    for flag, value in flags:
        arguments += [flag, value]
    finished = SimpleNamespace(status="done", result=SimpleNamespace(stopped=None))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("gatys.cli.run_job", lambda *args, **kwargs: finished)
        result = CliRunner().invoke(cli, arguments)
    assert result.exit_code in (0, 2), (arguments, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def _nan_at(monkeypatch, evaluations):
    """The Gram loss returns NaN at the given (1-based) evaluations."""
    calls = {"count": 0}
    original = losses.gram.GramLoss.scaled

    def scaled(self, feats, scale, target):
        value = original(self, feats, scale, target)
        if feats.requires_grad:
            calls["count"] += 1
        # five style layers per evaluation: the first of them decides
        evaluation = (calls["count"] - 1) // 5 + 1
        return value * float("nan") if feats.requires_grad and evaluation in evaluations else value

    monkeypatch.setattr(losses.gram.GramLoss, "scaled", scaled)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_non_finite_evaluation_is_survived_and_recorded(capsys, folder, monkeypatch, optimizer):
    _nan_at(monkeypatch, {4})
    status, lines = _transfer(capsys, folder / "content.png", folder / "style.png", "-o", folder / "nan.png",
                              *TINY, "--iterations", "8", "--optimizer", optimizer)
    assert status == 0, lines
    manifest = json.loads((folder / "nan.json").read_text())
    assert manifest["trace"][0]["non_finite_evaluations"] == 1 and manifest["stopped"] is None
    totals = manifest["trace"][0]["losses"]["total"]
    assert len(totals) == 8 and np.isnan(totals[3]) and np.isfinite(totals[4:]).all()
    assert np.asarray(Image.open(folder / "nan.png")).std() > 0


def test_a_run_that_cannot_recover_keeps_its_best_image_and_says_why(capsys, folder, monkeypatch):
    _nan_at(monkeypatch, set(range(3, 100)))
    status, lines = _transfer(capsys, folder / "content.png", folder / "style.png", "-o", folder / "stuck.png",
                              *TINY, "--iterations", "60")
    assert status == 1 and len(lines) == 1 and "the objective is not finite" in lines[0], lines
    manifest = json.loads((folder / "stuck.json").read_text())
    assert "not finite" in manifest["stopped"] and manifest["trace"][0]["non_finite_evaluations"] >= 2
    Image.open(folder / "stuck.png").verify()


def test_cuda_out_of_memory_names_the_size_and_what_to_try(capsys, folder, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("gatys.engine.Transfer.run_batch", out_of_memory)
    before = sorted(path.name for path in folder.iterdir())
    status, lines = _transfer(capsys, folder / "content.png", folder / "style.png", "-o", folder / "out.png", *TINY)
    assert status == 2 and len(lines) == 1, lines
    assert "out of GPU memory in a transfer at 32 px" in lines[0] and "Tried to allocate 2.00 GiB" in lines[0]
    assert "--scales 16" in lines[0] and "--precision bf16" in lines[0]
    _unchanged(folder, before)


def test_a_full_disk_while_saving_keeps_the_previous_file(capsys, folder, monkeypatch):
    def full(stream):
        stream.write(b"half a picture")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    original = gatys.images.write_atomically
    monkeypatch.setattr(gatys.images, "write_atomically", lambda path, write: original(path, full))
    before = sorted(path.name for path in folder.iterdir())
    status, lines = _transfer(capsys, folder / "content.png", folder / "style.png", "-o", folder / "out.png", *TINY)
    assert status == 2 and len(lines) == 1, lines
    assert "No space left on device; the existing file is unchanged" in lines[0]
    _unchanged(folder, before)  # no temporary file left either


def _ctrl_c_as_at_a_terminal() -> None:
    """SIGINT back to its default in the child: a shell starts background jobs with it ignored,
    and Python then installs no KeyboardInterrupt handler, so a suite run in the background
    (`bash .ci/run &`) would see the run go on to its end instead of stopping."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _running_transfer(folder, *extra):
    """A `gatys transfer` subprocess, returned once it has printed its first progress line."""
    process = subprocess.Popen([sys.executable, "-m", "gatys", "transfer", str(folder / "content.png"),
                                str(folder / "style.png"), "-o", str(folder / "run.png"), "--size", "32",
                                "--iterations", "100000", "--precision", "fp32", "--device", "cpu", *extra],
                               stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_as_at_a_terminal)
    assert process.stderr.readline().startswith("scale 1/1")
    return process


@pytest.mark.parametrize("signal_number, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_run_keeps_the_best_image_and_a_manifest_marked_interrupted(folder, signal_number, status):
    process = _running_transfer(folder)
    try:
        random.seed(signal_number)
        time.sleep(random.uniform(0.0, 1.0))  # at a random moment of the run
        process.send_signal(signal_number)
        assert process.wait(timeout=60) == status
    finally:
        process.kill()
    manifest = json.loads((folder / "run.json").read_text())
    assert manifest["interrupted"] is True and len(manifest["trace"][0]["losses"]["total"]) >= 1
    assert Image.open(folder / "run.png").size == (32, 24)


def test_sigkill_leaves_no_file_a_later_run_takes_as_finished(folder):
    process = _running_transfer(folder)
    process.kill()
    process.wait(timeout=60)
    assert not (folder / "run.png").exists() and not (folder / "run.json").exists()
