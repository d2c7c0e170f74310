"""gatys compare: a tiny study end to end (files, matrix, escaping, reproducibility, resume), calibration."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from browser import chromium_path, external_references, needs_chromium, screenshot
from gatys.cli import cli
from gatys.compare import Study, parse_losses
from gatys.compare.calibrate import strength, style_term
from gatys.compare.controls import CONTENT_ONLY, LABELS as CONTROLS, REFERENCE_STYLE
from gatys.errors import GatysError

# File names a user could give: each must come out of the report as text, never as markup.
CONTENT_NAME = '<b>cat & "dog".png'
STYLE_NAME = "<script>alert('x').png"
LOSSES = "gram,mmd-linear,moments,sliced-wasserstein"
TINY = dict(losses=LOSSES, seeds=2, budget=8, size=32, precision="fp32", device="cpu")


@pytest.fixture(scope="module")
def inputs(image_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    shutil.copy(image_dir / "content.png", folder / CONTENT_NAME)
    shutil.copy(image_dir / "style.png", folder / STYLE_NAME)
    return folder / CONTENT_NAME, folder / STYLE_NAME


@pytest.fixture(scope="module")
def study(inputs, transfer, tmp_path_factory):
    """(the study folder, its result): four losses × two seeds at 32 px, 8 evaluations each."""
    directory = tmp_path_factory.mktemp("study") / "<i>study"
    result = Study(*inputs, directory, transfer=transfer, **TINY).run(quiet=True)
    return directory, result


def test_the_diagonal_falls_below_one_for_every_loss(study):
    _, result = study
    cross = result.cross
    losses = list(parse_losses(LOSSES))
    assert cross["rows"] == [*losses, *CONTROLS] and cross["columns"] == [*losses, "content"]
    for i, label in enumerate(losses):
        assert cross["mean"][i][i] < 1, label
        assert cross["seeds"][i][i] == 2
        assert cross["std"][i][i] is not None


def test_an_off_diagonal_entry_is_the_column_s_objective_at_the_row_s_output(study, inputs, transfer):
    """Entry (moments, gram) at seed 1: gram's own style term, as its run optimised it, at moments' output."""
    directory, result = study
    study_again = Study(*inputs, directory, transfer=transfer, **TINY)
    configs, initial, _ = study_again.prepare()
    row = next(r for r in result.runs if r["loss"] == "moments" and r["seed"] == 1)
    output = Image.open(directory / row["image"])
    objective = transfer.objective(study_again.content, study_again.style, config=configs["gram", 1])
    from gatys.images import as_image
    with torch.no_grad():
        value = float(style_term(objective, as_image(output).to(objective.content_target.device)))
        at_start = float(style_term(objective, initial[1]))
    record = next(r for r in result.cross["records"]
                  if r["optimised"] == "moments" and r["scored_by"] == "gram" and r["seed"] == 1)
    assert record["value"] == pytest.approx(value, rel=1e-5)
    assert record["value_at_init"] == pytest.approx(at_start, rel=1e-5)
    assert record["value"] != pytest.approx(next(
        r["value"] for r in result.cross["records"]
        if r["optimised"] == "gram" and r["scored_by"] == "gram" and r["seed"] == 1), rel=1e-3)


def test_the_controls_are_the_baseline_and_the_margin_s_unit(study):
    _, result = study
    losses = list(parse_losses(LOSSES))
    cross = result.cross
    content_only = cross["mean"][cross["rows"].index(CONTENT_ONLY)]
    gram_row = cross["mean"][0]
    assert content_only[0] > gram_row[0]  # without style, gram's term stays far higher than gram's own run leaves it
    margin = result.distances["margin"]
    assert margin["anchor"] == losses[0] and margin["fraction"] == 0.1
    assert margin["unit"] > 0 and margin["margin"] == pytest.approx(0.1 * margin["unit"])
    assert all(p["margin"] == margin["margin"] for p in result.pairs)
    to_style = {}
    for d in result.distances["to_style"]:
        to_style.setdefault(d["loss"], []).append(d["distance"])
    assert np.mean(to_style[REFERENCE_STYLE]) > np.mean(to_style[losses[0]])  # the other painting is farther


def test_every_run_finished_once_and_its_trace_is_kept(study):
    directory, result = study
    assert [(r["loss"], r["seed"]) for r in result.runs] == [(label, seed) for seed in (0, 1)
                                                             for label in (*parse_losses(LOSSES), *CONTROLS)]
    for record in result.runs:
        assert record["status"] == "done"
        assert (directory / record["image"]).is_file()
        assert record["evaluations"] == 8
        assert len(record["trace"][0]["losses"]["total"]) == 8
        assert record["precision"] == "fp32" and record["device"].startswith("cpu")
    assert result.environment["precisions"] == ["fp32"] and len(result.environment["devices"]) == 1


def test_the_files_parse(study):
    directory, result = study
    saved = json.loads((directory / "study.json").read_text())
    assert saved["verdicts"] == result.verdicts
    assert saved["cross"]["mean"] == result.cross["mean"]
    assert saved["environment"]["weights"]["sha256"]
    assert set(saved["timings"]) >= {"runs_seconds", "scoring_seconds", "total_seconds"}
    with open(directory / "cross.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 * (4 + 1)  # every output (controls too) by every loss and by the content loss
    assert all(float(row["remaining"]) == pytest.approx(float(row["value"]) / float(row["value_at_init"]))
               for row in rows)
    with open(directory / "pairs.csv", newline="") as handle:
        pairs = list(csv.DictReader(handle))
    assert len(pairs) == 6
    # 2 seeds: the paired test's smallest p is 0.5, and no interval from 2 seeds may declare equivalence
    assert {row["verdict"] for row in pairs} == {"inconclusive"}
    assert {float(row["smallest_p"]) for row in pairs} == {0.5}
    assert result.verdicts[:len(pairs)] == [p["sentence"] for p in result.pairs]  # then notes (a space left out)
    with Image.open(directory / "grid.png") as grid:
        assert grid.width > 8 * 160 and grid.height > 2 * 160


def test_user_strings_are_escaped_in_the_report(study):
    directory, _ = study
    page = (directory / "report.html").read_text()
    for raw in (CONTENT_NAME, STYLE_NAME, "<i>study", "<script", "<b>"):
        assert raw not in page
    assert "&lt;b&gt;cat &amp; &#34;dog&#34;.png" in page
    assert "&lt;script&gt;alert(&#39;x&#39;).png" in page
    assert "&lt;i&gt;study" in page
    assert external_references(page) == []


def test_the_identities_hold_on_the_study_s_features(study):
    _, result = study
    assert len(result.identities) == 3 * 5  # three identities at five style layers
    for check in result.identities:
        assert check["holds"], check
        assert check["relative_error"] < 1e-9


def test_a_rerun_skips_every_run_and_a_fresh_one_reproduces_the_numbers(study, inputs, transfer, tmp_path):
    directory, first = study
    again = Study(*inputs, directory, transfer=transfer, **TINY).run(quiet=True)
    assert {r["status"] for r in again.runs} == {"skipped"}
    fresh = Study(*inputs, tmp_path / "fresh", transfer=transfer, **TINY).run(quiet=True)
    for result in (again, fresh):
        assert result.cross["mean"] == first.cross["mean"]
        assert result.distances["matrix"] == first.distances["matrix"]
        assert [p["p"] for p in result.pairs] == [p["p"] for p in first.pairs]
        assert result.verdicts == first.verdicts
    assert [r["job"] for r in fresh.runs] == [r["job"] for r in first.runs]


@pytest.mark.parametrize("match", ["value", "gradient"])
def test_calibration_equalises_the_matched_quantity(match, content_path, style_path, transfer, tmp_path):
    study = Study(content_path, style_path, tmp_path, losses="gram,mmd-linear,moments,w2", seeds=1, match=match,
                  size=32, precision="fp32", device="cpu", transfer=transfer)
    configs, initial, weights = study.prepare()
    measured = {}
    for label in study.settings.losses:
        objective = transfer.objective(study.content, study.style, config=configs[label, 0])
        measured[label] = strength(objective, initial[0])
        # the objective's own style term, as a run evaluates it; its gradient from the objective without
        # the content and TV terms, whose total is then the style term alone
        _, parts = objective(initial[0])
        style_only = transfer.objective(study.content, study.style,
                                        config=configs[label, 0].replace(content_weight=0.0, tv_weight=0.0))
        x = initial[0].clone().requires_grad_(True)
        total, _ = style_only(x)
        (gradient,) = torch.autograd.grad(total, x)
        assert measured[label].value == pytest.approx(float(parts["style"]), rel=1e-5), label
        assert measured[label].gradient == pytest.approx(float(gradient.double().norm()), rel=1e-4), label
    reference = getattr(measured["gram"], match)
    assert weights["gram"]["factor"] == pytest.approx(1.0, rel=1e-6)  # gram at its default weight
    for label, found in measured.items():
        assert getattr(found, match) == pytest.approx(reference, rel=1e-4), label
        assert weights[label]["matched_ratio"] == pytest.approx(1.0, rel=1e-4)
    assert weights["moments"]["factor"] != pytest.approx(1.0, rel=1e-2)  # it did change something


def test_without_matching_each_loss_keeps_its_default_weight(content_path, style_path, transfer, tmp_path):
    study = Study(content_path, style_path, tmp_path, losses="gram,moments:weight=7", seeds=1, size=32,
                  precision="fp32", device="cpu", transfer=transfer)
    configs, _, weights = study.prepare()
    assert configs["moments:weight=7", 0].style_losses == ("moments:weight=7",)
    assert weights["gram"]["weights"] == [500.0] and weights["moments:weight=7"]["factor"] == 1.0


def test_a_clock_budget_ends_runs_keeps_them_and_a_rerun_skips_them(content_path, style_path, transfer, tmp_path):
    options = dict(losses="gram", seeds=1, seconds=0.3, size=32, precision="fp32", device="cpu", transfer=transfer)
    result = Study(content_path, style_path, tmp_path, **options).run(quiet=True)
    run, *controls = result.runs
    assert [control["loss"] for control in controls] == list(CONTROLS)
    assert run["status"] == "done" and run["stopped_by_clock"]
    assert run["seconds"] >= 0.3 and 1 <= run["evaluations"] < 10**6
    assert (tmp_path / run["image"]).is_file() and run["image"].startswith("clock/0.3s/jobs/")
    again = Study(content_path, style_path, tmp_path, **options).run(quiet=True)
    assert {r["status"] for r in again.runs} == {"skipped"}


_KILLED_STUDY = """
import sys
from gatys.compare import Study
Study(sys.argv[1], sys.argv[2], sys.argv[3], losses="gram,mmd-linear,moments", seeds=2, budget=40, size=32,
      precision="fp32", device="cpu").run(quiet=True)
"""


def _kill_once_finished(process: subprocess.Popen, directory, manifests: str, count: int) -> None:
    """SIGKILL the study in `process` once `count` run manifests matching the glob exist (within 300 s)."""
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if len([p for p in directory.glob(manifests) if not p.name.endswith(".error.json")]) >= count:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the study ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()


def test_a_study_killed_halfway_resumes_without_redoing_finished_runs(content_path, style_path, transfer, tmp_path):
    directory = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-c", _KILLED_STUDY, str(content_path), str(style_path),
                                str(directory)])
    jobs = directory / "jobs"
    _kill_once_finished(process, directory, "jobs/*.json", 2)
    before = {path.name: path.stat().st_mtime_ns for path in jobs.glob("*.json")}
    assert 2 <= len(before) < 10
    result = Study(content_path, style_path, directory, losses="gram,mmd-linear,moments", seeds=2, budget=40,
                   size=32, precision="fp32", device="cpu", transfer=transfer).run(quiet=True)
    statuses = [r["status"] for r in result.runs]
    assert statuses.count("skipped") == len(before) and statuses.count("done") == 10 - len(before)
    assert all((jobs / name).stat().st_mtime_ns == mtime for name, mtime in before.items())
    assert (directory / "report.html").is_file()


def test_the_command_line_runs_a_study_and_prints_the_verdicts(content_path, style_path, tmp_path):
    output = tmp_path / "cli"
    runner = CliRunner()
    result = runner.invoke(cli, ["compare", str(content_path), str(style_path), "-o", str(output), "--losses",
                                 "gram,moments", "--seeds", "2", "--iterations", "4", "--size", "32",
                                 "--precision", "fp32", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert "gram vs moments:" in result.output
    saved = json.loads((output / "study.json").read_text())
    assert saved["settings"]["budget"] == 4 and saved["settings"]["config"]["init"] == "noise"
    assert saved["commands"]["cli"].startswith("gatys compare ")
    assert "--size 32" in saved["commands"]["cli"] and "--budget 4" in saved["commands"]["cli"]


@pytest.mark.parametrize("arguments, message", [
    (["--losses", "gram,nope"], "unknown style loss 'nope'"),
    (["--losses", "gram,gram"], "listed twice"),
    (["--seeds", "0"], "seeds must be"),
    (["--budget", "3", "--iterations", "4"], "disagree"),
    (["--frame", "li2017", "--losses", "w2"], "li2017 frame has the reference code's weights"),
])
def test_bad_studies_exit_2_with_one_line(arguments, message, content_path, style_path, tmp_path):
    result = CliRunner().invoke(cli, ["compare", str(content_path), str(style_path), "-o", str(tmp_path / "x"),
                                      "--size", "32", *arguments])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "x" / "jobs").exists()


def test_parse_losses_keeps_a_spec_s_parameters_with_it():
    assert parse_losses("gram, mmd-gaussian:samples=64,estimator=linear,moments") == (
        "gram", "mmd-gaussian:samples=64,estimator=linear", "moments")
    assert parse_losses(["a", "b"]) == ("a", "b")


def test_a_study_refuses_settings_it_owns(content_path, style_path, tmp_path):
    with pytest.raises(GatysError, match="--seeds"):
        Study(content_path, style_path, tmp_path, seed=3)
    with pytest.raises(GatysError, match="--losses"):
        Study(content_path, style_path, tmp_path, style_losses=("gram",))


@needs_chromium
def test_the_report_renders_in_headless_chromium(study, tmp_path):
    directory, _ = study
    shot = screenshot(directory / "report.html", tmp_path / "report.png", width=1200, height=1600)
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, the heatmap and the grid, not a blank page
    assert external_references((directory / "report.html").read_text()) == []
    assert os.path.getsize(shot) > 20_000


def test_ctrl_c_stops_the_study_keeping_finished_runs_only(content_path, style_path, transfer, tmp_path,
                                                           monkeypatch):
    from gatys.compare import progress

    original = progress.StudyProgress.run

    def interrupting(self, label, seed, evaluations, seconds):
        callback = original(self, label, seed, evaluations, seconds)
        if self.done == 0:
            return callback

        def interrupt(state):
            callback(state)
            if state.iteration == 3:
                raise KeyboardInterrupt  # Ctrl-C in the second run
        return interrupt

    monkeypatch.setattr(progress.StudyProgress, "run", interrupting)
    options = dict(losses="gram,moments", seeds=1, budget=6, size=32, precision="fp32", device="cpu",
                   transfer=transfer)
    with pytest.raises(KeyboardInterrupt):
        Study(content_path, style_path, tmp_path, **options).run(quiet=True)
    assert len(list((tmp_path / "jobs").glob("*.png"))) == 1  # the interrupted run left nothing
    assert not (tmp_path / "report.html").exists()
    monkeypatch.undo()
    result = Study(content_path, style_path, tmp_path, **options).run(quiet=True)
    assert [r["status"] for r in result.runs] == ["skipped", "done", "done", "done"]  # then the two controls


def test_ctrl_c_in_the_command_line_exits_130_and_says_how_to_resume(content_path, style_path, tmp_path,
                                                                      monkeypatch):
    from gatys.compare import Study as StudyClass

    def interrupted(self, quiet=False, stream=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(StudyClass, "run", interrupted)
    result = CliRunner().invoke(cli, ["compare", str(content_path), str(style_path), "-o", str(tmp_path / "s"),
                                      "--size", "32"])
    assert result.exit_code == 130
    assert "rerun the same command to resume" in result.output


def test_progress_is_one_bar_on_a_terminal_and_a_line_per_run():
    import io
    from types import SimpleNamespace

    from gatys.compare.progress import StudyProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, bar in ((Terminal(), True), (io.StringIO(), False)):
        progress = StudyProgress(total=2, done=0, stream=stream)
        callback = progress.run("gram", 0, evaluations=10, seconds=None)
        for done in range(1, 11):
            callback(SimpleNamespace(elapsed=0.1 * done, done=done, total=10))
        progress.finished("gram seed 0: done")
        progress.close()
        text = stream.getvalue()
        assert "[1/2] gram seed 0: done" in text
        assert ("runs [" in text) is bar  # the bar (runs done, elapsed < remaining) only on a terminal


def test_a_batched_study_gives_the_numbers_of_one_run_at_a_time(study, inputs, transfer, tmp_path):
    """--batch 3: the same jobs, images and matrix; on the CPU, where a batch evaluates each image alone, identical."""
    directory, first = study
    batched = Study(*inputs, tmp_path / "batched", transfer=transfer, batch=3, **TINY).run(quiet=True)
    assert [r["job"] for r in batched.runs] == [r["job"] for r in first.runs]
    assert {r["status"] for r in batched.runs} == {"done"} and batched.environment["batch"] == 3
    for mine, theirs in zip(batched.runs, first.runs):
        torch.testing.assert_close(torch.tensor(mine["trace"][0]["losses"]["total"]),
                                   torch.tensor(theirs["trace"][0]["losses"]["total"]), rtol=0, atol=0)
        image = torch.from_numpy(np.asarray(Image.open(tmp_path / "batched" / mine["image"]), dtype=np.int16))
        reference = torch.from_numpy(np.asarray(Image.open(directory / theirs["image"]), dtype=np.int16))
        assert torch.equal(image, reference)
    assert batched.cross["mean"] == first.cross["mean"]


def test_a_run_that_fails_inside_a_study_is_reported_and_retried_on_rerun(content_path, style_path, transfer,
                                                                          tmp_path, monkeypatch):
    """One loss's runs fault: the study still scores and reports the others, says which failed and
    why, and a rerun retries only the failed ones."""
    from gatys.engine import Transfer

    run_batch = Transfer.run_batch

    def broken(self, runs, callbacks=None):
        if any("moments" in config.style_losses[0] for _, _, config in runs):
            raise RuntimeError("the <moments> fell over")
        return run_batch(self, runs, callbacks)

    monkeypatch.setattr(Transfer, "run_batch", broken)
    options = dict(losses="gram,mmd-linear,moments", seeds=2, budget=6, size=32, precision="fp32", device="cpu",
                   transfer=transfer)
    result = Study(content_path, style_path, tmp_path, **options).run(quiet=True)
    statuses = {(r["loss"], r["seed"]): r["status"] for r in result.runs}
    assert [status for (loss, _), status in statuses.items() if loss == "moments"] == ["failed", "failed"]
    assert {status for (loss, _), status in statuses.items() if loss != "moments"} == {"done"}
    failed = [r for r in result.runs if r["status"] == "failed"]
    assert all(r["error"] == "RuntimeError: the <moments> fell over" and r["image"] is None for r in failed)
    assert {(p["a"], p["b"]): p["reason"].startswith("not tested") for p in result.pairs} == {
        ("gram", "mmd-linear"): False, ("gram", "moments"): True, ("mmd-linear", "moments"): True}
    html = (tmp_path / "report.html").read_text()
    assert "the &lt;moments&gt; fell over" in html and "the <moments>" not in html
    json.loads((tmp_path / "study.json").read_text())

    monkeypatch.undo()
    again = Study(content_path, style_path, tmp_path, **options).run(quiet=True)
    assert {(r["loss"], r["status"]) for r in again.runs} == {("gram", "skipped"), ("mmd-linear", "skipped"),
                                                               ("moments", "done"), (CONTENT_ONLY, "skipped"),
                                                               (REFERENCE_STYLE, "skipped")}
    assert not any(p["reason"].startswith("not tested") for p in again.pairs)


def test_batch_with_a_clock_budget_exits_2(content_path, style_path, tmp_path):
    result = CliRunner().invoke(cli, ["compare", str(content_path), str(style_path), "-o", str(tmp_path / "x"),
                                      "--size", "32", "--seconds", "5", "--batch", "2"])
    assert result.exit_code == 2 and "--seconds" in result.output
    assert not (tmp_path / "x" / "jobs").exists()


_KILLED_POOLED = """
import sys
from gatys.cli import main
main(["compare", *sys.argv[1:5], "-o", sys.argv[5], "--losses", "gram,moments", "--seeds", "2", "--budget", "30",
      "--size", "32", "--precision", "fp32", "--device", "cpu", "-q"])
"""


def test_a_study_of_several_pairs_pools_their_verdicts_and_survives_sigkill(content_path, style_path, image_dir,
                                                                            transfer, tmp_path):
    """Two image pairs, SIGKILLed after a few runs and rerun: no finished run is redone, each pair has its own
    study, and the pooled report holds one verdict per pair of losses with how many image pairs agree."""
    pairs = [str(content_path), str(style_path), str(style_path), str(content_path)]
    directory = tmp_path / "pooled"
    process = subprocess.Popen([sys.executable, "-c", _KILLED_POOLED, *pairs, str(directory)])
    _kill_once_finished(process, directory, "pairs/*/jobs/*.json", 3)
    before = {path: path.stat().st_mtime_ns for path in directory.glob("pairs/*/jobs/*.json")}
    assert 3 <= len(before) < 16
    result = CliRunner().invoke(cli, ["compare", *pairs, "-o", str(directory), "--losses", "gram,moments",
                                      "--seeds", "2", "--budget", "30", "--size", "32", "--precision", "fp32",
                                      "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in before.items())
    assert len(list(directory.glob("pairs/*/jobs/*.json"))) == 16  # (2 losses + 2 controls) × 2 seeds × 2 pairs
    assert sorted(p.name for p in (directory / "pairs").iterdir()) == ["content-x-style", "style-x-content"]
    assert "gram vs moments over 2 image pairs:" in result.output and "image pairs' own verdicts agree" in result.output
    with open(directory / "summary.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["a"] == "gram" and row["b"] == "moments" and row["image_pairs"] == "2" and row["seeds"] == "4"
    assert float(row["smallest_p"]) == 0.25  # two image pairs of two seeds: 2 × 2 distinct splits
    saved = json.loads((directory / "studies.json").read_text())
    assert [pair["folder"] for pair in saved["pairs"]] == ["pairs/content-x-style", "pairs/style-x-content"]
    assert "colour" in saved["spaces"] and set(saved["spaces"]) <= {"texture", "colour"}  # texture: with plenoptic
    assert [(r["a"], r["b"]) for r in saved["spaces"]["colour"]] == [("gram", "moments")]
    page = (directory / "report.html").read_text()
    assert "pairs/content-x-style/report.html" in page and external_references(page) == []
    if chromium_path():  # where Chromium is installed (CI installs it), the page renders and fetches nothing
        shot = screenshot(directory / "report.html", tmp_path / "pooled.png", width=1200, height=1000)
        with Image.open(shot) as image:
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50


def test_images_must_come_in_content_style_pairs(content_path, style_path, tmp_path):
    result = CliRunner().invoke(cli, ["compare", str(content_path), str(style_path), str(content_path), "-o",
                                      str(tmp_path / "x"), "--size", "32"])
    assert result.exit_code == 2 and "CONTENT STYLE pairs, got 3 images" in result.output
    assert not (tmp_path / "x").exists()


def test_the_default_seeds_are_the_fewest_with_which_the_default_losses_can_be_told_apart():
    from gatys.compare import DEFAULT_LOSSES, DEFAULT_SEEDS
    from gatys.compare.verdicts import min_seeds
    pairs = len(DEFAULT_LOSSES) * (len(DEFAULT_LOSSES) - 1) // 2
    assert DEFAULT_SEEDS == min_seeds(pairs) == 10
