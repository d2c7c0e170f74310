"""What a study measured, as plain data: the one type the study builds and the report reads."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class StudyResult:
    """Everything a study measured, as plain data (what study.json holds)."""

    settings: dict
    environment: dict
    commands: dict
    weights: dict            # per loss: the calibration factor, the specs and weights run, strengths at the start
    runs: list[dict]         # per loss × seed: status, image, evaluations, seconds, final losses, the loss trace
    cross: dict              # the cross-evaluation matrix (mean and std over seeds) and its per-seed records
    distances: dict          # the style distance: its definition, the matrix over outputs, each output to the style
    pairs: list[dict]        # per pair of losses: between/within distances, ratio, p, verdict
    verdicts: list[str]      # one sentence per pair
    identities: list[dict]
    timings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)
