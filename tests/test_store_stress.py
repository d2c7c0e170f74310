"""Many writers, random kills: several processes (two of this host, one passing for another
machine, and Ray tasks where Ray is installed) work one store of 24 jobs while they are SIGKILLed
at random moments, from outside and at the write order's fault points, and restarted. At the end
the store must hold every job once, each image proven by its manifest, with the pixels of an
uninterrupted run. The counts of the last run are in docs/reliability.md."""
from __future__ import annotations

import collections
import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from gatys import Store
from gatys.claims import holder
from gatys.faults import FAULT_VARIABLE
from gatys.files import file_sha256
from tests.stress_worker import LEASE, stress_jobs

WORKER = Path(__file__).with_name("stress_worker.py")
KILLS = 8           # outside SIGKILLs, each followed by a restart
FAULTS = "after-claim@0.05,after-image@0.1,after-manifest@0.05"  # the first workers' own random deaths
HOSTS = [None, None, "another-machine"]  # None: this host


def _environment(faults: bool) -> dict:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parent.parent)}
    environment.pop(FAULT_VARIABLE, None)
    return {**environment, FAULT_VARIABLE: FAULTS} if faults else environment


def _start(slot: int, store: Path, images: Path, log: Path, seed: int, faults: bool) -> subprocess.Popen:
    host = [HOSTS[slot]] if HOSTS[slot] else []
    return subprocess.Popen([sys.executable, str(WORKER), str(store), str(images), str(log), str(seed), *host],
                            env=_environment(faults), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_killed_and_restarted_writers_leave_every_job_once_with_the_uninterrupted_pixels(image_dir, tmp_path):
    store_dir, log, reference_dir = tmp_path / "store", tmp_path / "log.txt", tmp_path / "reference"
    jobs = stress_jobs(image_dir)
    assert len({job.id for job in jobs}) == 24
    chance = random.Random(int(os.environ.get("GATYS_STRESS_SEED", time.time_ns() % 2**32)))

    ray = None
    if importlib.util.find_spec("ray") is not None:
        ray = subprocess.Popen([sys.executable, str(WORKER), "--ray", str(store_dir), str(image_dir), str(log)],
                               env=_environment(faults=True), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ray_started = time.monotonic()  # the local workers start once the Ray tasks hold their first claims
        while not list(store_dir.glob("jobs/*.claim")) and time.monotonic() - ray_started < 120:
            time.sleep(0.1)
    workers = [_start(slot, store_dir, image_dir, log, slot, faults=True) for slot in range(len(HOSTS))]
    started, kills, faulted, deadline = len(workers), 0, 0, time.monotonic() + 240
    store = Store(store_dir)
    while kills < KILLS and time.monotonic() < deadline and sum(1 for _ in store.finished()) < len(jobs):
        time.sleep(chance.uniform(0.3, 2.0))
        slot = chance.randrange(len(workers))
        if workers[slot].poll() is None:
            workers[slot].send_signal(signal.SIGKILL)
            workers[slot].wait()
            kills += 1
        elif workers[slot].returncode != 0:
            faulted += 1
        workers[slot] = _start(slot, store_dir, image_dir, log, started, faults=kills < KILLS // 2)
        started += 1
    for slot, worker in enumerate(workers):  # the last ones die only where GATYS_FAULT is still set
        while worker.wait(timeout=300) != 0:
            faulted += 1
            worker = _start(slot, store_dir, image_dir, log, started, faults=False)
            started += 1
    if ray is not None:
        ray.wait(timeout=300)
    finisher = _start(0, store_dir, image_dir, log, started, faults=False)  # after the Ray tasks' last deaths
    assert finisher.wait(timeout=300) == 0, finisher.stderr.read().decode()[-2000:]
    started += 1

    # an uninterrupted run of the same jobs, one process, the same thread count
    uninterrupted = _start(0, reference_dir, image_dir, tmp_path / "reference-log.txt", 0, faults=False)
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read().decode()[-2000:]

    finished = {result.id: result for result in store.finished()}
    assert set(finished) == {job.id for job in jobs} == {result.id for result in Store(reference_dir).finished()}
    for job_id, result in finished.items():
        assert result.manifest["image"]["sha256"] == file_sha256(result.image)
        assert np.array_equal(_pixels(result.image), _pixels(Store(reference_dir).image_path(job_id))), job_id
        assert holder(store.claim_path(job_id), LEASE) is None
    assert not list(store.jobs.glob(".*.tmp")) and not list(store.jobs.glob("*.error.json"))

    lines = [line.split() for line in log.read_text().splitlines()]
    done = collections.Counter(job_id for status, job_id, _ in lines if status in ("done", "ray-done"))
    assert max(done.values()) == 1, "a job was written twice"  # a kill may hide a done line, never add one
    print(f"\nstress: {started} worker processes (3 at a time{', beside Ray tasks' if ray else ''}), {kills} outside "
          f"kills, {faulted} deaths at fault points, {sum(1 for status, *_ in lines if status == 'start') - len(jobs)} repeats of work over "
          f"{len(jobs)} jobs; {sum(1 for status, *_ in lines if status == 'claimed')} claimed-elsewhere skips, "
          f"outcomes {dict(collections.Counter(status for status, *_ in lines if status != 'start'))}")
