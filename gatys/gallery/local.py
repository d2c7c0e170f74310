"""The local backend of galleries: jobs run in this process, or in spawned worker processes (one per GPU).

Jobs on a CPU run one after another in this process with one Transfer, unless `workers` asks
for several processes; jobs on CUDA get one worker process per GPU. Each worker process
(spawned: CUDA cannot be forked) keeps one Transfer for all its jobs; the store is their only
coordination.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from ..jobs import Job, batchable
from ..store import Store
from .plan import device_type as _device_type  # a name of this module's: tests patch it
from .results import JobReport


def local_workers(jobs: Sequence[Job], workers: int | None) -> list[str | None]:
    """The device of each local worker: one per GPU where jobs run on CUDA (cuda:0, cuda:1, ...),
    else one in this process (None: each job's own device)."""
    import torch

    on_cuda = any(_device_type(job.config) == "cuda" and job.config.device in ("auto", "cuda") for job in jobs)
    gpus = torch.cuda.device_count() if on_cuda else 0
    count = workers or max(1, gpus)
    if gpus:
        return [f"cuda:{index % gpus}" for index in range(count)]
    return ["cpu"] * count if count > 1 else [None]


def run_local(directory: Path, jobs: Sequence[Job], workers: int | None = None,
              on_report: Callable[[JobReport], None] | None = None, batch: int = 1) -> list[JobReport]:
    """Run jobs into the store at `directory`: in this process with one Transfer, or in one spawned
    process per device, each with its own Transfer; up to `batch` jobs that can share a network
    pass (jobs.batchable) run together."""
    devices = local_workers(jobs, workers)
    report_to = on_report or (lambda job_report: None)
    batches = batchable(jobs, batch)
    if devices == [None]:
        from ..engine import Transfer

        transfer, store, reports = Transfer(), Store(directory), []
        for group in batches:
            for outcome in store.run_batch(transfer, group, retry_failed=True):
                reports.append(JobReport.of(outcome))
                report_to(reports[-1])
            if any(job_report.status == "interrupted" for job_report in reports[-len(group):]):
                break
        return reports
    return _run_in_processes(directory, batches, devices, report_to)


def _run_in_processes(directory: Path, batches: Sequence[list[Job]], devices: list[str],
                      report_to: Callable[[JobReport], None]) -> list[JobReport]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    queue = context.Queue()
    for device in devices:
        queue.put(device)
    threads = max(1, (os.cpu_count() or 1) // len(devices))
    reports = []
    with ProcessPoolExecutor(len(devices), mp_context=context, initializer=_start_worker,
                             initargs=(queue, threads)) as pool:
        futures = {pool.submit(_work, str(directory), group): group for group in batches}
        try:
            for future in as_completed(futures):
                try:
                    job_reports = future.result()
                except Exception as error:  # the worker process died (killed, out of memory)
                    job_reports = [JobReport(job.id, "failed", f"worker lost: {type(error).__name__}: {error}")
                                   for job in futures[future]]
                for job_report in job_reports:
                    reports.append(job_report)
                    report_to(job_report)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return reports


_WORKER: dict[str, Any] = {}  # in a worker process: its device and its Transfer


def _start_worker(devices, threads: int) -> None:
    """A local worker process: its device, its thread count, and (on first use) one Transfer."""
    import torch

    _WORKER["device"] = devices.get()
    if _WORKER["device"] == "cpu":
        torch.set_num_threads(threads)


def _work(directory: str, jobs: list[Job]) -> list[JobReport]:
    """Run a batch of jobs in this worker process, on its device, with its Transfer."""
    from ..engine import Transfer

    if "transfer" not in _WORKER:
        _WORKER["transfer"] = Transfer()
    device = _WORKER["device"]
    jobs = [dataclasses.replace(job, config=job.config.replace(device=device))  # not in the id
            if device.startswith("cuda") and job.config.device in ("auto", "cuda") else job for job in jobs]
    return [JobReport.of(outcome) for outcome in Store(directory).run_batch(_WORKER["transfer"], jobs)]
