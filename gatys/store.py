"""The result store: finished jobs by id, one writer per job, each image proven by its manifest.

DIRECTORY/jobs/ holds <id>.png and its manifest <id>.json (written last, with the image's
SHA-256), <id>.error.json for a job that failed, and <id>.claim while a process works on it
(gatys/claims.py). A job is done when its manifest is readable, finished and names the bytes of
the image beside it; anything else (an image without a manifest, a manifest whose image was
replaced or damaged) is not done and runs again. Any number of processes, on any number of
machines that share the folder, may work one store at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from .claims import DEFAULT_LEASE, Heartbeat, acquire, holder, read_record
from .engine import Callback, Transfer
from .faults import fault_point
from .files import file_sha256
from .jobs import Job, Outcome, run_jobs


@dataclass(frozen=True)
class StoredResult:
    """A finished job in a store: its id, image and manifest."""

    id: str
    image: Path
    manifest: dict


class Store:
    """Results of jobs by id under DIRECTORY/jobs/; claims older than `lease` seconds count as abandoned."""

    def __init__(self, directory: str | Path, lease: float = DEFAULT_LEASE):
        self.directory = Path(directory)
        self.jobs = self.directory / "jobs"
        self.lease = lease

    def image_path(self, job_id: str) -> Path:
        return self.jobs / f"{job_id}.png"

    def manifest_path(self, job_id: str) -> Path:
        return self.jobs / f"{job_id}.json"

    def error_path(self, job_id: str) -> Path:
        return self.jobs / f"{job_id}.error.json"

    def claim_path(self, job_id: str) -> Path:
        return self.jobs / f"{job_id}.claim"

    def place(self, job: Job) -> Job:
        """The job with its output where this store keeps it."""
        return job.placed(self.image_path(job.id))

    def check(self, job: Job | str) -> tuple[str, str | None]:
        """(status, why): done, failed or missing, and for a job that is not done what its files show."""
        job_id = job if isinstance(job, str) else job.id
        record, why = self._verified(job_id)
        if record is not None:
            return "done", None
        if self.error_path(job_id).is_file():
            return "failed", why
        running = holder(self.claim_path(job_id), self.lease)
        if running is not None:
            why = f"running in process {running.get('pid')} on {running.get('host')}"
        return "missing", why

    def status(self, job: Job | str) -> str:
        """done (an image and a finished manifest that names its bytes), failed (an error record) or missing."""
        return self.check(job)[0]

    def manifest(self, job_id: str) -> dict | None:
        """The manifest of a finished job; None unless the job is done."""
        return self._verified(job_id)[0]

    def _verified(self, job_id: str) -> tuple[dict | None, str | None]:
        manifest_file, image = self.manifest_path(job_id), self.image_path(job_id)
        record = read_record(manifest_file)
        if record is None:
            if manifest_file.exists():
                return None, "its manifest is unreadable"
            return None, "an image without its manifest (a run stopped between the two)" if image.exists() else None
        if record.get("interrupted"):
            return None, "its run was interrupted"
        digest = (record.get("image") or {}).get("sha256")
        try:
            actual = file_sha256(image)
        except OSError:
            return None, "a manifest without its image"
        if digest is None:
            return None, "its manifest holds no digest of the image (written before digests were kept)"
        if actual != digest:
            return None, "the image does not match its manifest's digest"
        return record, None

    def error(self, job_id: str) -> dict | None:
        return read_record(self.error_path(job_id))

    def finished(self) -> Iterator[StoredResult]:
        """Every finished job, by id."""
        for path in sorted(self.jobs.glob("*.json")):
            if path.name.endswith(".error.json"):
                continue
            record = self.manifest(path.stem)
            if record is not None:
                yield StoredResult(path.stem, self.image_path(path.stem), record)

    def failures(self) -> Iterator[tuple[str, dict]]:
        """(id, error record) of every failed job that has not finished since."""
        for path in sorted(self.jobs.glob("*.error.json")):
            job_id = path.name[: -len(".error.json")]
            record = read_record(path)
            if record is not None and self.status(job_id) == "failed":
                yield job_id, record

    def run(self, transfer: Transfer, job: Job, callbacks: Callback | Sequence[Callback] | None = None, *,
            retry_failed: bool = True, keep_interrupted: bool = False) -> Outcome:
        """Run a job into the store unless it is done (or failed, without retry_failed): resumable."""
        return self.run_batch(transfer, [job], [callbacks], retry_failed=retry_failed,
                              keep_interrupted=keep_interrupted)[0]

    def run_batch(self, transfer: Transfer, jobs: Sequence[Job],
                  callbacks: Sequence[Callback | Sequence[Callback] | None] | None = None, *,
                  retry_failed: bool = True, keep_interrupted: bool = False) -> list[Outcome]:
        """Run jobs that can share a batch (`batchable`) into the store together.

        Finished jobs are skipped, and jobs another live process holds a claim on are left to it
        (claimed); the others are claimed first, kept claimed by a heartbeat while they run, and
        released after their manifests. keep_interrupted writes an interrupted run's best image
        and a manifest that says so (a study on the clock), which still is not done.
        """
        callbacks = list(callbacks) if callbacks is not None else [None] * len(jobs)
        outcomes: list[Outcome | None] = [None] * len(jobs)
        claimed = []
        self.jobs.mkdir(parents=True, exist_ok=True)
        try:
            for index, (job, callback) in enumerate(zip(jobs, callbacks)):
                placed = self.place(job)
                outcomes[index] = self._skip(placed, retry_failed)
                if outcomes[index] is not None:
                    continue
                claim = acquire(self.claim_path(placed.id), self.lease)
                if claim is None:
                    outcomes[index] = Outcome(placed, "claimed", error=self.check(placed)[1])
                    continue
                fault_point("after-claim")
                outcomes[index] = self._skip(placed, retry_failed)  # another process finished it meanwhile
                if outcomes[index] is not None:
                    claim.release()
                    continue
                claimed.append((index, placed, callback, claim))
            if claimed:
                with Heartbeat([claim for *_, claim in claimed], self.lease / 6):
                    ran = run_jobs(transfer, [placed for _, placed, _, _ in claimed],
                                   [callback for _, _, callback, _ in claimed], keep_interrupted=keep_interrupted,
                                   claims=[claim for *_, claim in claimed])
                fault_point("after-manifest")
                for (index, *_), outcome in zip(claimed, ran):
                    outcomes[index] = outcome
        finally:
            for *_, claim in claimed:
                claim.release()
        return outcomes

    def _skip(self, placed: Job, retry_failed: bool) -> Outcome | None:
        status = self.status(placed)
        if status == "done" or (status == "failed" and not retry_failed):
            error = (self.error(placed.id) or {}).get("error") if status == "failed" else None
            return Outcome(placed, "skipped", error=error)
        return None

