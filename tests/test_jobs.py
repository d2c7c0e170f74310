"""Jobs and the store: stable ids, the manifest written last, failures recorded, SIGKILL leaving nothing done."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import gatys
from gatys import Job, Store, TransferConfig, run_job
from gatys.config import options
from gatys.images import read_metadata

TINY = TransferConfig(size=32, iterations=3, precision="fp32", device="cpu")

# One changed value per pixel-affecting setting; a new setting must be added here (or declared pixels=False).
ALTERNATES = {
    "size": 48, "octaves": 2, "scales": (24, 32), "iterations": 4, "optimizer": "adam", "tolerance": 0.0,
    "learning_rate": 0.5,
    "style_losses": ("moments",), "style_layers": ("relu1_1",), "style_weight": 2.0,
    "style_blend_weights": (0.3, 0.7), "style_scale": 0.5, "content_layer": "relu3_2", "content_weight": 0.5,
    "content_target": "adain", "tv_weight": 0.0, "normalize_layers": False, "init": "noise", "seed": 1,
    "preserve_colors": "luminance", "resample": True, "weights": "torchvision-file", "weights_convention": "caffe",
    "pooling": "avg", "precision": "bf16", "style_size": "final", "coarse_min_positions": 8,
    "coarse_content_weight": 1.0, "scale_init": "upsampled",
    "masks": "mask files", "style_masks": "mask files", "mask_propagation": "inside",
}
MASK_SETTINGS = ("masks", "style_masks", "mask_propagation")  # the last two only count with masks


@pytest.fixture
def two_styles(image_dir):
    return [image_dir / "style.png", image_dir / "style2.jpg"]


def test_every_pixel_setting_has_an_alternate_here():
    pixel_settings = {name for name, option in options().items() if option.pixels}
    assert set(ALTERNATES) == pixel_settings
    assert {name for name, option in options().items() if not option.pixels} == {"device", "cuda_graph",
                                                                                 "max_memory"}


@pytest.mark.parametrize("name", sorted(ALTERNATES))
def test_the_id_changes_with_every_pixel_setting(name, content_path, two_styles, tmp_path):
    weights = tmp_path / "vgg.pth"
    weights.write_bytes(b"not read: only hashed")
    base = TINY.replace(weights=str(weights))  # a file, so that its convention counts
    value = str(weights) if name == "weights" else ALTERNATES[name]
    if name == "weights":
        base = TINY  # caffe → a state-dict file
    if name in MASK_SETTINGS:
        masks = [tmp_path / "left.png", tmp_path / "right.png"]
        for path, colour in zip(masks, (255, 0)):
            Image.new("L", (48, 36), colour).save(path)
        value = tuple(map(str, masks)) if name != "mask_propagation" else value
        if name != "masks":
            base = base.replace(masks=tuple(map(str, masks[::-1])))
    changed = base.replace(**{name: value})
    assert Job(content_path, two_styles, base).id != Job(content_path, two_styles, changed).id


def test_the_id_ignores_paths_spellings_and_where_it_runs(content_path, style_path, tmp_path, monkeypatch):
    job = Job(content_path, [style_path], TINY)
    copy = tmp_path / "renamed.png"
    shutil.copy(style_path, copy)
    monkeypatch.chdir(style_path.parent)
    same = [
        Job(Path(os.path.relpath(content_path)), [Path("style.png")], TINY),
        Job(content_path, [copy], TINY),
        Job(content_path, [style_path], TINY.replace(device="auto", cuda_graph=False)),
        Job(content_path, [style_path], TINY.replace(scales=(32,), size=512)),
        Job(content_path, [style_path], TINY.replace(style_losses=("gram:weight=500",), style_weight=1)),
        Job(content_path, [style_path], TINY, output=tmp_path / "elsewhere.png"),
    ]
    assert {other.id for other in same} == {job.id}
    two = Job(content_path, [style_path, copy], TINY.replace(style_blend_weights=(7, 3)))
    assert two.id == Job(content_path, [style_path, copy], TINY.replace(style_blend_weights=(0.7, 0.3))).id


def test_the_id_changes_with_an_input_s_bytes(content_path, style_path, tmp_path):
    copy = tmp_path / "style.png"
    shutil.copy(style_path, copy)
    before = Job(content_path, [copy], TINY).id
    image = Image.open(copy).convert("RGB")
    image.putpixel((0, 0), (0, 0, 0))
    image.save(copy)
    assert Job(content_path, [copy], TINY).id != before


def test_the_id_is_the_same_in_another_process_and_directory(content_path, style_path, tmp_path):
    job = Job(content_path, [style_path], TINY.replace(style_losses=("sliced-wasserstein", "moments")))
    code = ("import sys, gatys; config = gatys.TransferConfig(size=32, iterations=3, precision='fp32', device='cpu', "
            "style_losses=('sliced-wasserstein', 'moments')); print(gatys.Job(sys.argv[1], [sys.argv[2]], config).id)")
    printed = subprocess.run([sys.executable, "-c", code, os.path.relpath(content_path, tmp_path),
                              os.path.relpath(style_path, tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout.strip()
    assert printed == job.id


def test_run_job_writes_the_image_then_the_manifest(transfer, content_path, style_path, tmp_path):
    out = tmp_path / "out.png"
    outcome = run_job(transfer, Job(content_path, [style_path], TINY, out))
    assert outcome.status == "done" and outcome.error is None
    manifest = json.loads((tmp_path / "out.json").read_text())
    assert manifest["job"]["id"] == Job(content_path, [style_path], TINY).id
    assert manifest["inputs"]["content"]["sha256"] == manifest["job"]["identity"]["content"]
    assert read_metadata(out)["job"] == manifest["job"]["id"]


def test_a_failing_job_leaves_an_error_record_and_the_next_one_runs(transfer, content_path, style_path, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG, but no")
    store = Store(tmp_path / "store")
    jobs = [Job(corrupt, [style_path], TINY), Job(content_path, [style_path], TINY)]
    outcomes = [store.run(transfer, job) for job in jobs]
    assert [outcome.status for outcome in outcomes] == ["failed", "done"]
    assert "corrupt.png" in outcomes[0].error
    record = store.error(jobs[0].id)
    assert record["job"] == jobs[0].id and "Traceback" in record["traceback"] and record["settings"]["size"] == 32
    assert store.status(jobs[0]) == "failed" and store.status(jobs[1]) == "done"
    assert [failed_id for failed_id, _ in store.failures()] == [jobs[0].id]
    assert store.run(transfer, jobs[0], retry_failed=False).status == "skipped"
    assert store.run(transfer, jobs[1]).status == "skipped"  # done: not run again


def test_a_fault_during_the_run_is_an_outcome_not_an_exception(transfer, content_path, style_path, tmp_path,
                                                               monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the device fell over")

    monkeypatch.setattr(transfer, "run_batch", broken)
    store = Store(tmp_path)
    outcome = store.run(transfer, Job(content_path, [style_path], TINY))
    assert outcome.status == "failed" and outcome.error == "RuntimeError: the device fell over"
    assert "the device fell over" in store.error(outcome.job.id)["traceback"]
    assert not store.manifest_path(outcome.job.id).exists()


def test_store_lists_finished_results_and_ignores_interrupted_ones(transfer, content_path, style_path, tmp_path):
    store = Store(tmp_path)
    jobs = [Job(content_path, [style_path], TINY.replace(seed=seed)) for seed in (1, 2)]
    for job in jobs:
        assert store.run(transfer, job).status == "done"
    assert sorted(result.id for result in store.finished()) == sorted(job.id for job in jobs)
    path = store.manifest_path(jobs[0].id)
    path.write_text(json.dumps({**json.loads(path.read_text()), "interrupted": True}))
    assert store.status(jobs[0]) == "missing"
    assert [result.id for result in store.finished()] == [jobs[1].id]


_KILLED_RUN = """
import sys, gatys
config = gatys.TransferConfig(size=32, iterations=100000, precision="fp32", device="cpu")
job = gatys.Job(sys.argv[1], [sys.argv[2]], config)
def started(progress):
    if progress.done == 2:
        print("running", flush=True)
gatys.Store(sys.argv[3]).run(gatys.Transfer(), job, started)
"""


def test_a_job_killed_mid_run_is_not_done_and_a_rerun_finishes_it(transfer, content_path, style_path, tmp_path):
    store = Store(tmp_path / "store")
    process = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(content_path), str(style_path),
                                str(store.directory)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "running"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    job = Job(content_path, [style_path], TransferConfig(size=32, iterations=100000, precision="fp32", device="cpu"))
    assert store.status(job) == "missing" and not store.manifest_path(job.id).exists()
    assert list(store.finished()) == []
    short = job.config.replace(iterations=2)  # a different job; the killed one, run to the end, takes too long here
    assert store.run(transfer, Job(content_path, [style_path], short)).status == "done"
    assert store.status(job) == "missing"


def test_rerunning_a_killed_job_finishes_it(transfer, content_path, style_path, tmp_path):
    """What a killed run leaves (temporary files, no manifest) does not stop the same job from finishing."""
    store = Store(tmp_path)
    job = Job(content_path, [style_path], TINY)
    store.jobs.mkdir()
    (store.jobs / f".{job.id}.png.0123456789ab.tmp").write_bytes(b"half an image")
    store.image_path(job.id).write_bytes(b"an image whose manifest never came")
    assert store.status(job) == "missing"
    assert store.run(transfer, job).status == "done" and store.status(job) == "done"
    Image.open(store.image_path(job.id)).verify()


@pytest.mark.parametrize("loss", ["sliced-wasserstein", "mmd-gaussian:samples=64"])
def test_the_seed_reaches_sampling_losses_on_a_single_scale(transfer, content_path, style_path, loss):
    def image(seed: int) -> torch.Tensor:
        return transfer.run(content_path, style_path, style_losses=(loss,), seed=seed, iterations=3).image

    first = image(1)
    assert torch.equal(first, image(1))
    assert not torch.equal(first, image(2))


def test_a_loss_s_own_seed_wins_over_the_run_s(transfer, content_path, style_path):
    def image(seed: int) -> torch.Tensor:
        return transfer.run(content_path, style_path, style_losses=("sliced-wasserstein:seed=5",), seed=seed,
                            iterations=3).image

    assert torch.equal(image(1), image(2))


def test_gatys_exports_the_job_layer():
    assert {gatys.Job, gatys.Store, gatys.run_job} <= {getattr(gatys, name) for name in gatys.__all__}


def test_objective_has_the_random_choices_of_the_run_s_last_scale(transfer, content_path, style_path):
    """Transfer.objective reproduces the last scale's sampling choices, whatever the init drew."""
    settings = dict(scales=(24, 32), iterations=2, init="noise", seed=3, style_losses=("sliced-wasserstein",))
    seen = {}

    def keep(progress):
        seen["image"], seen["total"] = progress.image.clone(), progress.losses["total"].item()

    transfer.run(content_path, style_path, callback=keep, **settings)
    with torch.no_grad():
        total, _ = transfer.objective(content_path, style_path, **settings)(seen["image"])
    assert total.item() == pytest.approx(seen["total"], rel=1e-6)
