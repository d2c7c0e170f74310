"""A worker of the store's stress test (tests/test_store_stress.py): works every job of the
stress set into one store, in its own order, logging what it starts and how each job ends.

    python tests/stress_worker.py STORE IMAGES LOG SEED [HOST]      # a local worker process
    python tests/stress_worker.py --ray STORE IMAGES LOG            # the set as Ray tasks

HOST makes the worker pass for a process of another machine (claims then expire only by their
lease, as across NFS). Kills come from outside (SIGKILL) and from GATYS_FAULT.
"""
from __future__ import annotations

import functools
import os
import random
import socket
import sys
from pathlib import Path

import gatys
from gatys import Job, TransferConfig

LEASE = 2.0  # seconds: short, so that a dead foreign worker's claims expire within the test


def stress_jobs(images: Path) -> list[Job]:
    """24 jobs at 32 px: 2 contents × 3 styles × 4 seeds, float32 on the CPU."""
    contents = [images / "content.png", images / "style2.jpg"]
    styles = [images / "style.png", images / "style2.jpg", images / "content.png"]
    return [Job(content, (style,), TransferConfig(size=32, iterations=4, seed=seed, init="noise",
                                                  precision="fp32", device="cpu"))
            for content in contents for style in styles for seed in range(4)]


def _log(log: Path, *fields) -> None:
    with open(log, "a") as stream:  # one short line per write, O_APPEND: lines of several writers do not mix
        stream.write(" ".join(str(field) for field in fields) + "\n")


class LoggingTransfer(gatys.Transfer):
    """A Transfer that logs "start" when a run's first evaluation is done: the work that a kill wastes."""

    def __init__(self, log: Path):
        super().__init__()
        self.log = log

    def run_batch(self, runs, callbacks=None):
        def started(progress):
            if progress.done == 1:
                _log(self.log, "start", "-", os.getpid())
        callbacks = list(callbacks) if callbacks is not None else [None] * len(runs)
        return super().run_batch(runs, [[started, *([c] if callable(c) else (c or []))] for c in callbacks])


def work(store_dir: Path, images: Path, log: Path, seed: int) -> None:
    store, transfer = gatys.Store(store_dir, lease=LEASE), LoggingTransfer(log)
    jobs = stress_jobs(images)
    random.Random(seed).shuffle(jobs)
    for job in jobs:
        outcome = store.run(transfer, job)
        _log(log, outcome.status, job.id, os.getpid())


def work_on_ray(store_dir: Path, images: Path, log: Path) -> None:
    from gatys.gallery import ray_backend

    ray_backend.import_ray().init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    for report in ray_backend.run_jobs(store_dir, stress_jobs(images), make_transfer=functools.partial(LoggingTransfer, log)):
        _log(log, f"ray-{report.status}", report.id, os.getpid())


if __name__ == "__main__":
    if sys.argv[1] == "--ray":
        work_on_ray(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        if len(sys.argv) > 5:
            socket.gethostname = lambda: sys.argv[5]  # a process of another machine, to the claims
        work(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
