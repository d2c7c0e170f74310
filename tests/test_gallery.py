"""Galleries: the spec and its errors, stable plans, a real tiny run (images, contact sheets, index),
resuming after SIGKILL, failures and --retry-failed, escaping, the page in Chromium, progress."""
from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from browser import external_references, needs_chromium, screenshot
from gatys import GatysError, Store
from gatys.callbacks import GalleryProgress, ProgressReporter
from gatys.cli import cli, main
from gatys.engine import Transfer
from gatys.gallery import Gallery
from gatys.gallery.outputs import sheet_names, write_outputs

ROOT = Path(__file__).resolve().parents[1]
TINY = {"size": 48, "iterations": 3, "precision": "fp32", "device": "cpu"}
SPEC = """\
name = "tiny"
contents = ["images/a*.png"]
styles = ["images/style_1.png", "images/style_2.jpg"]
losses = ["gram", "moments"]

[defaults]
size = 48
iterations = 3
precision = "fp32"
device = "cpu"
"""


def _picture(height: int, width: int, seed: int) -> Image.Image:
    """A smooth, colourful test image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [0.5 + 0.4 * np.sin(2 * np.pi * (f * x + (i + 1) * y) + i) for i, f in enumerate(rng.uniform(2, 8, 3))]
    return Image.fromarray((np.stack(channels, axis=-1) * 255).round().astype(np.uint8))


def _make_spec(folder: Path, text: str = SPEC) -> Path:
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    _picture(36, 48, 1).save(images / "a_cat.png")
    _picture(48, 40, 2).save(images / "a_dog.png")
    _picture(40, 40, 3).save(images / "style_1.png")
    _picture(30, 44, 4).save(images / "style_2.jpg")
    spec = folder / "gallery.toml"
    spec.write_text(text)
    return spec


def _manifests(directory: Path) -> dict[str, int]:
    """Finished job id → its manifest's modification time (ns)."""
    return {result.id: result.manifest and (directory / "jobs" / f"{result.id}.json").stat().st_mtime_ns
            for result in Store(directory).finished()}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return _make_spec(tmp_path_factory.mktemp("spec"))


@pytest.fixture(scope="module")
def finished(spec, tmp_path_factory):
    """The tiny gallery run once, uninterrupted: (directory, summary)."""
    directory = tmp_path_factory.mktemp("gallery")
    summary = Gallery.from_toml(spec).run(directory, progress=False)
    return directory, summary


# ---------------------------------------------------------------------------- a run

def test_a_run_writes_every_image_the_contact_sheets_and_the_index(finished):
    directory, summary = finished
    assert (summary.done, summary.failed, summary.skipped, summary.total) == (8, 0, 0, 8)
    assert summary.complete and not summary.interrupted
    assert len(list((directory / "jobs").glob("*.png"))) == 8
    assert len(_manifests(directory)) == 8
    assert len(list((directory / "thumbs").glob("*.png"))) == 8
    for name in ("contact-sheet.png", "contact-sheet-gram.png", "contact-sheet-moments.png", "index.html"):
        assert (directory / name).is_file(), name
    with Image.open(directory / "contact-sheet-gram.png") as sheet:
        assert sheet.width < Image.open(directory / "contact-sheet.png").width  # two columns against four
        pixels = np.asarray(sheet.convert("L"), dtype=float)
    assert pixels.std() > 20  # pictures, not an empty white sheet


def test_a_second_run_does_no_work_and_says_so(finished, spec):
    directory, _ = finished
    before = _manifests(directory)
    result = CliRunner().invoke(cli, ["gallery", str(spec), "-o", str(directory)])
    assert result.exit_code == 0, result.output
    assert "nothing to do: 8 of 8 done" in result.output
    assert _manifests(directory) == before


def test_the_dry_run_prints_counts_what_is_left_and_an_estimate(finished, spec, tmp_path):
    directory, _ = finished
    partial = tmp_path / "partial"
    shutil.copytree(directory, partial)
    for job_id in sorted(_manifests(partial))[:3]:
        (partial / "jobs" / f"{job_id}.json").unlink()
    result = CliRunner().invoke(cli, ["gallery", str(spec), "-o", str(partial), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "8 jobs (2 contents × 2 styles × 2 losses × 1 variant): 5 done, 0 failed, 3 missing" in result.output
    assert re.search(r"left: 3 jobs, about \d+:\d\d one after another \(from 5 finished jobs' timings\)",
                     result.output), result.output
    assert len(_manifests(partial)) == 5  # a dry run runs nothing

    empty = CliRunner().invoke(cli, ["gallery", str(spec), "-o", str(tmp_path / "new"), "--dry-run"])
    assert "0 done, 0 failed, 8 missing" in empty.output and "rough" in empty.output
    assert not (tmp_path / "new").exists()


def test_the_dry_run_names_a_damaged_pair_as_not_done_and_why(finished, spec, tmp_path):
    directory, _ = finished
    damaged = tmp_path / "damaged"
    shutil.copytree(directory, damaged)
    first, second = sorted(_manifests(damaged))[:2]
    (damaged / "jobs" / f"{second}.png").replace(damaged / "jobs" / f"{first}.png")  # one image under another's manifest
    result = CliRunner().invoke(cli, ["gallery", str(spec), "-o", str(damaged), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "6 done, 0 failed, 2 missing" in result.output
    assert f"({first}): the image does not match its manifest's digest" in result.output
    assert f"({second}): a manifest without its image" in result.output


def test_sigkill_midway_then_a_rerun_finishes_the_rest_without_redoing_any(finished, spec, tmp_path):
    directory = tmp_path / "killed"
    command = [sys.executable, "-m", "gatys", "gallery", str(spec), "-o", str(directory)]
    child = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in child.stderr:
            if line.startswith("[1/8] done"):
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    survived = _manifests(directory)
    assert 1 <= len(survived) < 8, "the kill landed after the last job: nothing left to resume"

    time.sleep(0.01)  # so that a rewritten manifest would have a later mtime
    summary = Gallery.from_toml(spec).run(directory, progress=False)
    assert summary.done == 8 - len(survived) and summary.skipped == len(survived) and summary.failed == 0
    after = _manifests(directory)
    assert {job_id: after[job_id] for job_id in survived} == survived  # no finished job redone
    assert set(after) == set(_manifests(finished[0]))  # the same ids as the uninterrupted run


# ---------------------------------------------------------------------------- the index page

@needs_chromium
def test_the_index_in_chromium_is_not_blank_and_fetches_nothing(finished, tmp_path):
    directory, _ = finished
    html = (directory / "index.html").read_text()
    assert external_references(html) == []
    png = screenshot(directory / "index.html", tmp_path / "index.png", width=1000, height=1200)
    shutil.copy(png, Path(os.environ.get("GATYS_SCREENSHOTS", tmp_path)) / "gallery_index.png")
    pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.05  # headings, pictures: not a blank page


def test_the_index_links_thumbnails_to_images_and_shows_each_jobs_settings(finished):
    directory, _ = finished
    html = (directory / "index.html").read_text()
    for job_id in _manifests(directory):
        assert f'href="jobs/{job_id}.png"' in html and f'src="thumbs/{job_id}.png"' in html
    assert "<dt>loss</dt><dd>moments</dd>" in html and "<dt>size</dt><dd>48</dd>" in html
    assert "contact-sheet-gram.png" in html


def test_names_are_escaped_in_the_page(tmp_path):
    folder = tmp_path / "spec"
    _make_spec(folder)
    nested = folder / "<b>x<"
    nested.mkdir()
    _picture(30, 30, 5).save(nested / "b>.png")
    _picture(30, 30, 6).save(folder / "b>.png")  # same name: both labelled by their paths, "<b>x</b>.png"
    gallery = Gallery(contents=["<b>x</b>.png", "b>.png"], styles=['images/style_1.png'], root=folder,
                      defaults=TINY, variants=[{"name": "<script>alert(1)</script>", "style-weight": 2}],
                      name="<i>gallery</i>")
    assert gallery.contents == ["<b>x</b>.png", "b>.png"]
    write_outputs(gallery.plan(tmp_path / "out"))  # nothing run: every cell a "missing" placeholder
    html = (tmp_path / "out" / "index.html").read_text()
    for raw in ("<b>x</b>", "<script>", "<i>gallery</i>"):
        assert raw not in html
    assert "&lt;b&gt;x&lt;/b&gt;.png" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert external_references(html) == []
    assert html.count(">missing<") >= 2 or html.count("missing") >= 2


# ---------------------------------------------------------------------------- failures

def test_failed_jobs_are_listed_and_rerun_only_with_retry_failed(spec, tmp_path, monkeypatch, capsys):
    gallery = Gallery(contents=[spec.parent / "images/a_cat.png"], styles=[spec.parent / "images/style_1.png",
                                                                           spec.parent / "images/style_2.jpg"],
                      defaults=TINY)
    run = Transfer.run_batch

    def flaky(self, runs, callbacks=None):
        if any(style[0].shape[-1] == 44 for _, style, _ in runs):  # style_2.jpg, 30×44
            raise RuntimeError("the disk <went> away")
        return run(self, runs, callbacks)

    monkeypatch.setattr(Transfer, "run_batch", flaky)
    summary = gallery.run(tmp_path, progress=False)
    assert (summary.done, summary.failed, summary.complete) == (1, 1, False)
    assert summary.failures[0][2] == "RuntimeError: the disk <went> away"
    html = (tmp_path / "index.html").read_text()
    assert "RuntimeError: the disk &lt;went&gt; away" in html and "Failures" in html
    with Image.open(tmp_path / "contact-sheet.png") as sheet:
        assert sheet.size[0] > 0

    monkeypatch.setattr(Transfer, "run_batch", run)
    spec_file = tmp_path / "one.toml"
    spec_file.write_text(f'contents = ["{spec.parent}/images/a_cat.png"]\n'
                         f'styles = ["{spec.parent}/images/style_1.png", "{spec.parent}/images/style_2.jpg"]\n'
                         "[defaults]\nsize = 48\niterations = 3\nprecision = \"fp32\"\ndevice = \"cpu\"\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["gallery", str(spec_file), "-o", str(tmp_path)])
    assert exit_info.value.code == 1
    assert "nothing to do: 1 of 2 done, 1 failed (--retry-failed reruns them)" in capsys.readouterr().err
    retried = gallery.run(tmp_path, retry_failed=True, progress=False)
    assert (retried.done, retried.failed, retried.skipped, retried.complete) == (1, 0, 1, True)
    assert "Failures" not in (tmp_path / "index.html").read_text()


def test_local_workers_in_spawned_processes_finish_the_same_ids(finished, spec, tmp_path):
    gallery = Gallery.from_toml(spec)
    summary = gallery.run(tmp_path, workers=2, progress=False)  # two CPU processes, each its own Transfer
    assert (summary.done, summary.failed) == (8, 0)
    assert set(_manifests(tmp_path)) == set(_manifests(finished[0]))


def test_a_batched_gallery_makes_the_same_pictures(finished, spec, tmp_path):
    """--batch 4: each content's four jobs (two styles × two losses) together; on the CPU, identical pictures."""
    summary = Gallery.from_toml(spec).run(tmp_path, batch=4, progress=False)
    assert (summary.done, summary.failed) == (8, 0)
    assert set(_manifests(tmp_path)) == set(_manifests(finished[0]))
    for result in Store(tmp_path).finished():
        image = np.asarray(Image.open(result.image), dtype=np.int16)
        reference = np.asarray(Image.open(finished[0] / "jobs" / f"{result.id}.png"), dtype=np.int16)
        assert np.array_equal(image, reference)


def test_a_batch_below_one_exits_2(spec, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["gallery", str(spec), "-o", str(tmp_path), "--batch", "0"])
    assert exit_info.value.code == 2 and "--batch" in capsys.readouterr().err
    assert not (tmp_path / "jobs").exists()


def test_one_local_worker_per_gpu(monkeypatch, spec):
    import torch

    import gatys.gallery.local as gallery_module

    jobs = [job.job for job in Gallery.from_toml(spec).jobs]
    assert gallery_module.local_workers(jobs, None) == [None]  # device = "cpu": in this process
    assert gallery_module.local_workers(jobs, 2) == ["cpu", "cpu"]
    monkeypatch.setattr(gallery_module, "_device_type", lambda config: "cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    auto = [dataclasses.replace(job, config=job.config.replace(device="auto")) for job in jobs]
    assert gallery_module.local_workers(auto, None) == ["cuda:0", "cuda:1"]
    assert gallery_module.local_workers(auto, 3) == ["cuda:0", "cuda:1", "cuda:0"]


# ---------------------------------------------------------------------------- the spec

def test_the_plans_ids_are_stable_and_change_with_every_axis(spec, tmp_path):
    plan = Gallery.from_toml(spec).plan(tmp_path)
    again = Gallery.from_toml(spec).plan(tmp_path)
    ids = [job.id for job in plan.jobs]
    assert ids == [job.id for job in again.jobs] and len(set(ids)) == 8
    assert [(job.content, job.style, job.loss) for job in plan.jobs[:2]] == [
        ("a_cat.png", "style_1.png", "gram"), ("a_cat.png", "style_1.png", "moments")]

    moved = tmp_path / "moved"
    shutil.copytree(spec.parent, moved)
    assert [job.id for job in Gallery.from_toml(moved / "gallery.toml").plan(tmp_path).jobs] == ids  # not paths

    def one(**changes):
        fields = {"contents": ["images/a_cat.png"], "styles": ["images/style_1.png"], "losses": ["gram"],
                  "defaults": TINY, **changes}
        return Gallery(**fields, root=spec.parent).plan(tmp_path).jobs[0].id

    base = one()
    assert base in ids
    changed = {"content": one(contents=["images/a_dog.png"]), "style": one(styles=["images/style_2.jpg"]),
               "loss": one(losses=["moments"]), "variant": one(variants=[{"style-weight": 2}]),
               "default": one(defaults={**TINY, "seed": 1})}
    assert base not in changed.values() and len(set(changed.values())) == len(changed)
    assert one(variants=[{"name": "same as the defaults"}]) == base  # a name alone changes no pixels


def test_variants_sweep_options_and_get_a_sheet_each(spec, tmp_path):
    text = SPEC.replace('losses = ["gram", "moments"]\n', "") + (
        '[[variants]]\nname = "soft"\nstyle-weight = 0.5\n\n[[variants]]\nstyle_weight = 5\ntv-weight = 0\n')
    gallery = Gallery.from_toml(_make_spec(tmp_path / "spec", text))
    plan = gallery.plan(tmp_path / "out")
    assert [job.variant for job in plan.jobs[:2]] == ["soft", "style-weight=5, tv-weight=0"]
    assert {job.loss for job in plan.jobs} == {"gram"}
    assert plan.jobs[1].job.config.style_weight == 5 and plan.jobs[1].job.config.tv_weight == 0
    assert sheet_names(gallery.groups) == {("gram", "soft"): "soft",
                                           ("gram", "style-weight=5, tv-weight=0"): "style-weight=5-tv-weight=0"}
    write_outputs(plan)
    assert sorted(path.name for path in (tmp_path / "out").glob("contact-sheet*.png")) == [
        "contact-sheet-soft.png", "contact-sheet-style-weight=5-tv-weight=0.png", "contact-sheet.png"]


def test_explicit_jobs_with_their_own_loss_and_options(spec, tmp_path):
    text = ('[defaults]\nsize = 48\niterations = 3\nprecision = "fp32"\ndevice = "cpu"\n\n'
            '[[jobs]]\ncontent = "images/a_cat.png"\nstyle = "images/style_1.png"\n\n'
            '[[jobs]]\ncontent = "images/a_dog.png"\nstyle = ["images/style_1.png", "images/style_2.jpg"]\n'
            'loss = "moments"\nname = "blend"\nstyle-blend-weights = [0.7, 0.3]\n')
    gallery = Gallery.from_toml(_make_spec(tmp_path / "spec", text))
    first, second = gallery.plan(tmp_path / "out").jobs
    assert (first.content, first.style, first.loss, first.variant) == ("a_cat.png", "style_1.png", "gram", "")
    assert (second.style, second.loss, second.variant) == ("style_1.png + style_2.jpg", "moments", "blend")
    assert second.job.config.style_blend_weights == (0.7, 0.3) and len(second.job.styles) == 2
    write_outputs(gallery.plan(tmp_path / "out"))  # cells no job fills are blank placeholders
    assert (tmp_path / "out" / "contact-sheet.png").is_file()


ERRORS = {  # case: (text in SPEC, its replacement (None: append the replacement), the message)
    "unknown option": ('device = "cpu"\n', 'device = "cpu"\nstyle-wieght = 2\n',
                       "[defaults]: unknown key 'style-wieght'; did you mean style-weight"),
    "option at the top": ('name = "tiny"\n', 'name = "tiny"\nsize = 64\n',
                          "unknown key 'size'; transfer options go under [defaults]"),
    "unknown key": ('name = "tiny"\n', 'name = "tiny"\nlossses = []\n', "unknown key 'lossses'; did you mean losses"),
    "missing file": ('"images/a*.png"', '"images/nope.png"', "contents image 'images/nope.png': no such file"),
    "no glob match": ('"images/style_2.jpg"', '"images/*.gif"', "styles pattern 'images/*.gif' matches no file"),
    "empty contents": ('["images/a*.png"]', "[]", "contents is empty"),
    "empty losses": ('["gram", "moments"]', "[]", "losses is empty"),
    "bad value": ("size = 48", 'size = "big"', "size must be a whole number"),
    "bad loss": ('"moments"]', '"nope"]', "style loss 'nope'"),
    "bad variant value": (None, '[[variants]]\nname = "x"\noptimizer = "sgd"\n',
                          "[[variants]] #1: optimizer must be one of"),
    "repeated variant": (None, '[[variants]]\nname = "x"\n[[variants]]\nname = "x"\n', "'x' is given twice"),
    "run key": ('device = "cpu"\n', 'device = "cpu"\noutput = "x.png"\n', "'output' is not an option here"),
    "jobs and axes": (None, '[[jobs]]\ncontent = "images/a_cat.png"\nstyle = "images/style_1.png"\n',
                      "give either contents, styles, losses and variants, or a [[jobs]] list"),
    "not toml": ('name = "tiny"\n', "name = \n", "is not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_spec_errors_are_one_line_before_any_work(case, tmp_path, capsys):
    old, new, message = ERRORS[case]
    assert old is None or old in SPEC
    spec = _make_spec(tmp_path / "spec", SPEC + new if old is None else SPEC.replace(old, new))
    with pytest.raises(GatysError) as error:
        Gallery.from_toml(spec)
    assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(SystemExit) as exit_info:
        main(["gallery", str(spec), "-o", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith("gatys: error:"), lines
    assert not (tmp_path / "out").exists()


def test_python_api_errors(tmp_path, spec):
    images = spec.parent / "images"
    with pytest.raises(GatysError, match="list contents and styles"):
        Gallery()
    with pytest.raises(GatysError, match="backend must be one of local, ray"):
        Gallery([images / "a_cat.png"], [images / "style_1.png"], defaults=TINY).run(tmp_path, backend="slurm")
    with pytest.raises(GatysError, match="cannot read image .*not an image"):
        (tmp_path / "fake.png").write_bytes(b"not a png")
        Gallery([tmp_path / "fake.png"], [images / "style_1.png"], defaults=TINY).plan(tmp_path)
    # field names work as well as TOML keys in code
    gallery = Gallery([images / "a_cat.png"], [images / "style_1.png"], defaults={**TINY, "style_losses": ["w2"]})
    assert gallery.jobs[0].job.config.style_losses == ("w2",) and gallery.jobs[0].loss == "w2"


def test_the_ray_backend_without_ray_is_one_line_before_any_work(spec, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    with pytest.raises(SystemExit) as exit_info:
        main(["gallery", str(spec), "-o", str(tmp_path / "out"), "--backend", "ray"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert lines == ["gatys: error: the ray backend needs Ray: pip install 'gatys[ray]'"]
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- progress

class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_gallery_bar_on_a_terminal_and_plain_lines_elsewhere():
    terminal = _Terminal()
    bar = GalleryProgress(3, stream=terminal)
    bar.job("done   a × b  0.1 s")
    bar.job("failed a × c", failed=True)
    bar.close()
    text = terminal.getvalue()
    assert "gallery" in text and "done   a × b" in text and "done 1  failed 1  left 1" in text and "2/3" in text

    plain = io.StringIO()
    lines = GalleryProgress(2, stream=plain)
    lines.job("done   a × b")
    lines.job("done   a × c")
    assert plain.getvalue().splitlines()[0].startswith("[1/2] done   a × b  (done 1  failed 0  left 1, eta")
    assert plain.getvalue().splitlines()[1] == "[2/2] done   a × c  (done 2  failed 0  left 0)"


def test_the_transfer_bar_on_a_terminal(content_path, style_path, transfer):
    terminal = _Terminal()
    reporter = ProgressReporter(stream=terminal, refresh=0)
    transfer.run(content_path, style_path, callback=reporter, iterations=4)
    text = terminal.getvalue()
    assert "scale 1/1 32×24" in text and "4/4" in text and "content" in text and "eta" not in text
    assert reporter._bar is None  # closed at the last evaluation


def test_the_example_script_runs(tmp_path):
    command = [sys.executable, str(ROOT / "examples" / "gallery_script.py"), "--size", "32", "--iterations", "2",
               "--out", str(tmp_path), "--quiet"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "index.html").is_file() and len(list((tmp_path / "jobs").glob("*.json"))) == 8
