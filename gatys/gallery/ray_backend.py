"""The Ray backend of galleries: one Ray task per job (or per batch of jobs), results in a store every node sees.

Each task runs `Store(directory).run_batch(...)` with a Transfer cached in its worker process, so a
worker that runs many jobs loads the network once. A task asks for one GPU where the cluster has
GPUs (none otherwise) and is retried up to twice when it raises: a job that fails with a fault
(not a GatysError, which no retry mends) raises, so a flaky node or file is tried again; the
last failure stays in the store as the job's error record. The planner (plan.py) and
the store (jobs.py) are shared with the local backend; this module only schedules. Needs `pip install 'gatys[ray]'`.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Callable, Sequence

from ..errors import GatysError
from ..jobs import Job, batchable
from ..store import Store
from .results import JobReport

MAX_RETRIES = 2

_TRANSFERS: dict = {}  # per worker process: factory → its Transfer


class JobFault(RuntimeError):
    """A job failed with a fault worth retrying; carries the job's one-line error."""


def import_ray():
    """The ray module, or a GatysError that says how to install it."""
    try:
        import ray
    except ModuleNotFoundError:
        raise GatysError("the ray backend needs Ray: pip install 'gatys[ray]'") from None
    return ray


def _transfer(make_transfer: Callable | None):
    """The Transfer this worker process reuses across its tasks."""
    from ..engine import Transfer

    factory = make_transfer or Transfer
    if factory not in _TRANSFERS:
        _TRANSFERS[factory] = factory()
    return _TRANSFERS[factory]


def run_batch_task(directory: str, jobs: Sequence[Job], make_transfer: Callable | None = None) -> list[JobReport]:
    """The body of one Ray task: run a batch of jobs (often one) into the store, skipping those done there.

    A fault that is not the job's own (GatysError) raises, so Ray retries the task; its jobs
    that finished meanwhile are skipped by the retry.
    """
    outcomes = Store(directory).run_batch(_transfer(make_transfer), jobs, retry_failed=True)
    for outcome in outcomes:
        if outcome.status == "failed" and not isinstance(outcome.exception, GatysError):
            raise JobFault(outcome.error)  # Ray retries it (max_retries)
    return [JobReport.of(outcome) for outcome in outcomes]


def connect(address: str | None = None) -> bool:
    """Connect to the Ray cluster at `address` (or RAY_ADDRESS), or start a local one, unless this
    process is connected already; True when this call connected."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    check_address(address)
    try:
        ray.init(address=address, log_to_driver=False)
    except ConnectionError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        hint = "" if os.environ.get("RAY_AUTH_MODE") else "; from Ray 2.59 on, joining a cluster started with " \
                                                          "`ray start` needs RAY_AUTH_MODE=token"
        raise GatysError(f"cannot reach the Ray cluster at {address or os.environ.get('RAY_ADDRESS')}: "
                         f"{reason}{hint}") from None
    return True


def check_address(address: str | None, seconds: float = 5.0) -> None:
    """Ray is importable and, for a HOST:PORT address, something listens there: otherwise a quick
    GatysError (Ray itself waits minutes for an address where nothing listens)."""
    import_ray()
    if not address:
        return
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not port.isdigit():
        return  # "auto", "local" and the like: Ray resolves them
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as error:
        raise GatysError(f"cannot reach the Ray cluster at {address}: {error.strerror or error} "
                         "(is `ray start --head` running there?)") from None


def run_jobs(directory: str | os.PathLike, jobs: Sequence[Job], *, address: str | None = None,
             on_report: Callable[[JobReport], None] | None = None,
             make_transfer: Callable | None = None, batch: int = 1) -> list[JobReport]:
    """Run jobs as Ray tasks into the store at `directory` (a path every node sees); report each as it ends.

    Each task runs up to `batch` jobs that can share a network pass (jobs.batchable) together.
    `make_transfer` (picklable, default `gatys.Transfer`) builds the Transfer each worker reuses.
    """
    ray = import_ray()
    connected_here = connect(address)
    directory = str(Path(directory).resolve())
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    task = ray.remote(num_gpus=gpus, max_retries=MAX_RETRIES, retry_exceptions=True)(run_batch_task)
    pending = {task.remote(directory, group, make_transfer): group for group in batchable(jobs, batch)}
    reports = []
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(ready[0])
            try:
                job_reports = ray.get(ready[0])
            except ray.exceptions.RayError as error:  # retries spent, or the worker died
                job_reports = [JobReport(job.id, "failed", _ray_error(error)) for job in group]
            for job_report in job_reports:
                reports.append(job_report)
                if on_report is not None:
                    on_report(job_report)
    except KeyboardInterrupt:
        for reference in pending:
            ray.cancel(reference, force=True)
        raise
    finally:
        if connected_here:
            ray.shutdown()
    return reports


def _ray_error(error: Exception) -> str:
    """The job's own one-line error where Ray wrapped a JobFault; Ray's first line otherwise."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, JobFault):
        return str(cause)
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"
