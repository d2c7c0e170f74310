"""A gallery's plan: each job's status in the store (done, failed, missing) and the time the rest should take.

`Plan.estimate` scales the finished jobs' median seconds per evaluated output pixel to the jobs
left, or, before any job has finished, uses a rough cost per evaluation for the device.
`Plan.describe` is the dry run's text.
"""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..callbacks import format_seconds
from ..config import TransferConfig
from ..errors import GatysError
from ..images import scaled_size
from ..jobs import Job
from ..store import Store

# Rough cost of one evaluation where no finished job has been timed yet: seconds per output
# pixel and a fixed part, from docs/performance.md (float32 on a 2-core CPU; an H200).
ROUGH_SECONDS = {"cpu": (4e-6, 0.03), "cuda": (2e-8, 0.002), "mps": (4e-7, 0.01)}
ROUGH_JOB_SECONDS = 1.0  # reading inputs, style targets, writing the image and manifest

NOTED_JOBS = 10  # jobs the dry run names with the reason they are not done (a damaged pair, a run elsewhere)
SINGULAR = {"contents": "content", "styles": "style", "losses": "loss", "variants": "variant"}


@dataclass(frozen=True)
class PlannedJob:
    """One job of a gallery with its labels; `status` (done, failed, missing) once planned."""

    job: Job
    content: str
    style: str
    loss: str
    variant: str
    status: str | None = None
    why: str | None = None

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def group(self) -> tuple[str, str]:
        """(loss, variant): the jobs of one contact sheet."""
        return self.loss, self.variant

    def describe(self) -> str:
        extra = " · ".join(part for part in (self.loss, self.variant) if part)
        return f"{self.content} × {self.style}" + (f" · {extra}" if extra else "")


@dataclass(frozen=True)
class Layout:
    """What the plan and the outputs need of a gallery: its name, axes and the labels of its rows,
    columns and sheets (plain data, so nothing here points back at the Gallery that made it)."""

    name: str
    axes: dict[str, int] | None # count per axis (contents, styles, losses, variants); None: listed jobs
    contents: list[str]
    styles: list[str]
    groups: list[tuple[str, str]]


@dataclass
class Plan:
    """A gallery's jobs with their status in a store; counts over distinct ids."""

    layout: Layout
    jobs: list[PlannedJob]
    store: Store

    def unique(self) -> list[PlannedJob]:
        """One planned job per id (two entries of a gallery may be the same job)."""
        return list({job.id: job for job in reversed(self.jobs)}.values())[::-1]

    @property
    def counts(self) -> Counter:
        return Counter(job.status for job in self.unique())

    @property
    def total(self) -> int:
        return len(self.unique())

    @property
    def done(self) -> int:
        return self.counts["done"]

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    @property
    def missing(self) -> int:
        return self.counts["missing"]

    def to_run(self, retry_failed: bool = False) -> list[PlannedJob]:
        wanted = ("missing", "failed") if retry_failed else ("missing",)
        return [job for job in self.unique() if job.status in wanted]

    def error(self, job_id: str) -> str:
        return (self.store.error(job_id) or {}).get("error") or "failed (no message recorded)"

    def failures(self) -> list[tuple[str, str, str]]:
        """(id, job, message) of each failed job."""
        return [(job.id, job.describe(), self.error(job.id)) for job in self.unique() if job.status == "failed"]

    def estimate(self, retry_failed: bool = False) -> tuple[float, str]:
        """(seconds, how it was estimated) for the jobs left, run one after another.

        From the finished jobs' manifests where there are any (their median seconds per evaluated
        output pixel), otherwise a rough figure per evaluation for the device.
        """
        left = self.to_run(retry_failed)
        timed = [(record["timings"]["total_seconds"], _work_done(record))
                 for record in (self.store.manifest(job.id) for job in self.unique() if job.status == "done")
                 if record and record.get("timings") and _work_done(record)]
        if timed:
            rate = statistics.median(seconds / work for seconds, work in timed)  # a worker's first job warms up
            return sum(rate * _work_planned(job.job) for job in left), \
                f"from {len(timed)} finished job{'s' if len(timed) != 1 else ''}' timings"
        seconds = 0.0
        for job in left:
            per_pixel, per_evaluation = ROUGH_SECONDS.get(device_type(job.job.config), ROUGH_SECONDS["cpu"])
            evaluations = sum(count for count, _ in _schedule(job.job))
            seconds += ROUGH_JOB_SECONDS + per_pixel * _work_planned(job.job) + per_evaluation * evaluations
        return seconds, "rough: no finished job to time yet"

    def nothing_to_do(self) -> str:
        text = f"nothing to do: {self.done} of {self.total} done"
        if self.failed:
            text += f", {self.failed} failed (--retry-failed reruns them)"
        return text

    def describe(self, retry_failed: bool = False, workers: int | None = None) -> str:
        """The dry run's text: counts, what is left, and the time it should take."""
        axes = self.layout.axes
        shape = (" (" + " × ".join(f"{count} {name if count != 1 else SINGULAR.get(name, name)}"
                                   for name, count in axes.items()) + ")") if axes else " (listed jobs)"
        left = self.to_run(retry_failed)
        lines = [f"gallery {self.layout.name}: {self.total} jobs{shape}: {self.done} done, "
                 f"{self.failed} failed, {self.missing} missing"]
        if not left:
            lines.append(self.nothing_to_do())
        else:
            seconds, how = self.estimate(retry_failed)
            per_worker = f", about {format_seconds(seconds / workers)} on {workers} workers" \
                if workers and workers > 1 else ""
            lines.append(f"left: {len(left)} job{'s' if len(left) != 1 else ''}, about {format_seconds(seconds)} "
                         f"one after another{per_worker} ({how})")
            if self.failed and not retry_failed:
                lines.append(f"{self.failed} failed job{'s' if self.failed != 1 else ''} will not be rerun "
                             "(--retry-failed reruns them)")
        noted = [job for job in self.unique() if job.status == "missing" and job.why]
        for job in noted[:NOTED_JOBS]:
            lines.append(f"  not done: {job.describe()} ({job.id}): {job.why}")
        if len(noted) > NOTED_JOBS:
            lines.append(f"  and {len(noted) - NOTED_JOBS} more not done for such reasons")
        return "\n".join(lines)


def _schedule(job: Job) -> list[tuple[int, int]]:
    """(evaluations, output pixels) per scale."""
    width, height = image_size(job.content)
    config = job.config
    result = []
    for index, size in enumerate(config.scale_sizes()):
        rows, columns = scaled_size(height, width, size)
        result.append((config.iterations_at(index), rows * columns))
    return result


def _work_planned(job: Job) -> float:
    return float(sum(evaluations * pixels for evaluations, pixels in _schedule(job)))


def _work_done(record: dict) -> float:
    """Evaluations × output pixels of a finished job, from its manifest's trace."""
    return float(sum(len(scale["losses"]["total"]) * scale["shape"][0] * scale["shape"][1]
                     for scale in record.get("trace", [])))


def device_type(config: TransferConfig) -> str:
    """The device type ("cpu", "cuda", "mps") a config runs on; "cpu" where its device is not available."""
    from ..device import resolve_device

    try:
        return resolve_device(config.device).type
    except GatysError:
        return "cpu"


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header; GatysError when it is not an image."""
    try:
        with Image.open(path) as image:
            return image.size
    except OSError as error:
        reason = "not an image Pillow can identify" if isinstance(error, Image.UnidentifiedImageError) \
            else error.strerror or str(error)
        raise GatysError(f"cannot read image {path}: {reason}") from None
