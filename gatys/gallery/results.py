"""What a gallery run hands back: a JobReport per job (from any backend) and the run's Summary."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..jobs import Outcome
from .plan import PlannedJob


@dataclass(frozen=True)
class JobReport:
    """How one job of a run ended, small enough to send between processes."""

    id: str
    status: str  # done, failed, skipped, claimed (running in another process), interrupted
    error: str | None = None
    seconds: float = 0.0

    @classmethod
    def of(cls, outcome: Outcome) -> "JobReport":
        return cls(outcome.job.id, outcome.status, outcome.error, outcome.seconds)

    def line(self, job: PlannedJob) -> str:
        detail = f": {self.error}" if self.error else ""
        return f"{self.status:<6} {job.describe()}  {self.seconds:.1f} s  {self.id}{detail}"


@dataclass
class Summary:
    """What a run did: jobs done, failed and skipped now, seconds, and what the store holds after."""

    done: int
    skipped: int
    failed: int
    seconds: float
    claimed: int = 0  # left to the other processes that were running them
    total: int = 0
    finished: int = 0
    interrupted: bool = False
    outputs: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # id, job, message

    @property
    def complete(self) -> bool:
        return self.finished == self.total

    def describe(self) -> str:
        state = "interrupted" if self.interrupted else "gallery"
        index = next((str(path) for path in self.outputs if path.name == "index.html"), "")
        elsewhere = f", {self.claimed} running in other processes" if self.claimed else ""
        return (f"{state}: {self.done} done, {self.failed} failed, {self.skipped} skipped{elsewhere} in {self.seconds:.1f} s; "
                f"{self.finished} of {self.total} done in the store" + (f"; see {index}" if index else ""))
