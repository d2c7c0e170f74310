"""The shared store: claims (one writer per job), digests (a manifest proves its image), the
execution in the id, and what a kill at each point of the write order leaves."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import gatys.device
from gatys import Job, Store, TransferConfig
from gatys import claims
from gatys.faults import FAULT_POINTS, FAULT_VARIABLE
from gatys.files import file_sha256


@pytest.fixture
def job(content_path, style_path):
    return Job(content_path, (style_path,), TransferConfig(size=32, iterations=3, precision="fp32", device="cpu"))


def _foreign_claim(path: Path, host: str = "another-machine", pid: int = 4242, age: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "token": "0123456789abcdef", "since": time.time() - age}))
    os.utime(path, (time.time() - age, time.time() - age))


def test_a_job_another_machine_holds_is_left_to_it_and_nothing_is_written(transfer, job, tmp_path):
    store = Store(tmp_path, lease=60)
    _foreign_claim(store.claim_path(job.id))
    outcome = store.run(transfer, job)
    assert outcome.status == "claimed" and "running in process 4242 on another-machine" in outcome.error
    assert not store.image_path(job.id).exists() and not store.manifest_path(job.id).exists()
    assert store.check(job) == ("missing", "running in process 4242 on another-machine")


def test_a_claim_past_its_lease_is_taken_over_and_released_after_the_manifest(transfer, job, tmp_path):
    store = Store(tmp_path, lease=60)
    _foreign_claim(store.claim_path(job.id), age=61)
    assert store.run(transfer, job).status == "done"
    assert store.status(job) == "done" and not store.claim_path(job.id).exists()


def test_the_manifest_records_what_ran_and_the_image_digest(transfer, job, tmp_path):
    store = Store(tmp_path)
    assert store.run(transfer, job).status == "done"
    manifest = json.loads(store.manifest_path(job.id).read_text())
    assert manifest["image"]["sha256"] == file_sha256(store.image_path(job.id))
    assert manifest["job"]["identity"]["execution"] == {"device": "cpu", "precision": "fp32"}
    assert manifest["kernels"] == {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                                   "threads": torch.get_num_threads()}


def test_a_claim_of_an_ended_process_of_this_host_is_taken_over_at_once(transfer, job, tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store = Store(tmp_path, lease=3600)
    _foreign_claim(store.claim_path(job.id), host=claims.owner()["host"], pid=int(ended.stdout))
    assert store.run(transfer, job).status == "done"


def test_a_claim_of_a_live_process_of_this_host_is_respected(transfer, job, tmp_path):
    store = Store(tmp_path, lease=3600)
    _foreign_claim(store.claim_path(job.id), host=claims.owner()["host"], pid=os.getppid())
    assert store.run(transfer, job).status == "claimed"


def test_a_run_whose_claim_was_taken_over_meanwhile_writes_nothing(transfer, job, tmp_path):
    store = Store(tmp_path, lease=60)

    def taken_over(progress):  # another process judged this one dead and claimed the job
        if progress.done == 1:
            store.claim_path(job.id).unlink()
            _foreign_claim(store.claim_path(job.id))

    outcome = store.run(transfer, job, taken_over)
    assert outcome.status == "claimed" and "took over its claim" in outcome.error
    assert not store.image_path(job.id).exists() and not store.manifest_path(job.id).exists()
    assert json.loads(store.claim_path(job.id).read_text())["host"] == "another-machine"  # its claim is left alone


def _race(path: str, lease: float, barrier, wins) -> None:
    barrier.wait()
    claim = claims.acquire(Path(path), lease)
    wins.put(claim.token if claim else None)
    time.sleep(0.5)  # hold it while the others try


@pytest.mark.parametrize("expired", [False, True], ids=["fresh", "taking-over-an-expired-claim"])
def test_of_processes_racing_for_one_claim_exactly_one_wins(tmp_path, expired):
    path = tmp_path / "jobs" / "x.claim"
    path.parent.mkdir()
    if expired:
        _foreign_claim(path, age=100)
    context = multiprocessing.get_context("spawn")
    barrier, wins = context.Barrier(6), context.Queue()
    racers = [context.Process(target=_race, args=(str(path), 10.0, barrier, wins)) for _ in range(6)]
    for racer in racers:
        racer.start()
    tokens = [wins.get(timeout=60) for _ in racers]
    for racer in racers:
        racer.join()
    winners = [token for token in tokens if token]
    assert len(winners) == 1, tokens
    assert json.loads(path.read_text())["token"] == winners[0]


def test_an_image_that_does_not_match_its_manifest_is_not_done_and_runs_again(transfer, job, tmp_path):
    store = Store(tmp_path)
    assert store.run(transfer, job).status == "done"
    digest = store.manifest(job.id)["image"]["sha256"]
    assert digest == file_sha256(store.image_path(job.id))
    other = Job(job.content, job.styles, job.config.replace(seed=5))
    store.run(transfer, other)
    store.image_path(other.id).replace(store.image_path(job.id))  # another writer's image under this manifest
    assert store.check(job) == ("missing", "the image does not match its manifest's digest")
    assert job.id not in {result.id for result in store.finished()}
    assert store.run(transfer, job).status == "done" and store.status(job) == "done"


@pytest.mark.parametrize("damage, why", [
    (lambda store, job_id: store.manifest_path(job_id).write_text("{"), "its manifest is unreadable"),
    (lambda store, job_id: store.manifest_path(job_id).unlink(), "an image without its manifest"),
    (lambda store, job_id: store.image_path(job_id).unlink(), "a manifest without its image"),
    (lambda store, job_id: store.manifest_path(job_id).write_text(json.dumps(
        {k: v for k, v in json.loads(store.manifest_path(job_id).read_text()).items() if k != "image"})),
     "holds no digest of the image"),
], ids=["unreadable", "no-manifest", "no-image", "older-store"])
def test_a_damaged_pair_is_not_done_and_says_why(transfer, job, tmp_path, damage, why):
    store = Store(tmp_path)
    store.run(transfer, job)
    damage(store, job.id)
    status, reason = store.check(job)
    assert status == "missing" and why in reason


_RUN_ONE = """
import sys, gatys
job = gatys.Job(sys.argv[1], (sys.argv[2],), gatys.TransferConfig(size=32, iterations=3, precision="fp32", device="cpu"))
print(gatys.Store(sys.argv[3]).run(gatys.Transfer(), job).status)
"""


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_kill_at_each_point_of_the_write_order_is_never_taken_as_finished_work(transfer, job, tmp_path, point):
    store = Store(tmp_path)
    killed = subprocess.run([sys.executable, "-c", _RUN_ONE, str(job.content), str(job.styles[0]), str(tmp_path)],
                            env={**os.environ, FAULT_VARIABLE: point}, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    image, manifest = store.image_path(job.id).exists(), store.manifest_path(job.id).exists()
    assert (image, manifest) == {"after-claim": (False, False), "after-image": (True, False),
                                 "after-manifest": (True, True)}[point]
    assert store.status(job) == ("done" if point == "after-manifest" else "missing")
    outcome = store.run(transfer, job)  # the killed process's claim does not hold the job up
    assert outcome.status == ("skipped" if point == "after-manifest" else "done")
    assert store.manifest(job.id)["image"]["sha256"] == file_sha256(store.image_path(job.id))


def test_precision_auto_gets_one_id_per_resolved_precision(content_path, style_path, monkeypatch):
    """A store shared by a bf16 machine and a float32 one files their pictures apart."""
    job = Job(content_path, (style_path,), TransferConfig(size=32, iterations=3, device="cpu"))
    monkeypatch.setattr(gatys.device, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(gatys.device, "cpu_can_run_bf16", lambda: True)
    on_bf16 = (job.id, job.identity["execution"])
    monkeypatch.setattr(gatys.device, "cpu_has_fast_bf16", lambda: False)
    on_fp32 = (Job(content_path, (style_path,), job.config).id, Job(content_path, (style_path,), job.config).identity["execution"])
    assert on_bf16[1] == {"device": "cpu", "precision": "bf16"} and on_fp32[1] == {"device": "cpu", "precision": "fp32"}
    assert on_bf16[0] != on_fp32[0]


def test_a_job_planned_where_auto_means_bf16_is_refused_where_it_means_fp32(transfer, content_path, style_path,
                                                                          tmp_path, monkeypatch):
    monkeypatch.setattr(gatys.device, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(gatys.device, "cpu_can_run_bf16", lambda: True)
    job = Job(content_path, (style_path,), TransferConfig(size=32, iterations=3, device="cpu"))
    job.identity  # planned (and its id fixed) on the bf16 machine
    monkeypatch.setattr(gatys.device, "cpu_has_fast_bf16", lambda: False)
    outcome = Store(tmp_path).run(transfer, job)
    assert outcome.status == "failed"
    assert "names a bf16 run on cpu, and here it would run in fp32" in outcome.error
    assert not Store(tmp_path).image_path(job.id).exists()
