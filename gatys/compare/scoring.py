"""The cross-evaluation matrix: every output scored by every loss of the study, and by the content loss.

Entry (i, j) for one seed is L_j(output of loss i) / L_j(initial image): how much of loss j's
style distance remains after optimising loss i. L_j is loss j's style term exactly as its own
run optimises it at that seed (its weights, targets and random choices), so the diagonal is
what each run minimised. The content column does the same for the content term.
"""
from __future__ import annotations

import statistics
from typing import Sequence

import torch

from ..config import TransferConfig
from ..engine import Transfer
from ..images import resize
from ..objective import Objective

CONTENT = "content"


def _parts(objective: Objective, image: torch.Tensor) -> dict[str, float]:
    image = resize(image, shape=objective.image_shape)  # the initial image of a coarse-to-fine run
    with torch.no_grad():
        _, parts = objective(image.to(objective.content_target.device))
    return {name: float(value) for name, value in parts.items()}


def score(transfer: Transfer, content: torch.Tensor, style: torch.Tensor, configs: dict[tuple[str, int], TransferConfig],
          outputs: dict[tuple[str, int], torch.Tensor], initial: dict[int, torch.Tensor],
          scorers: Sequence[str] | None = None) -> list[dict]:
    """One record per (optimised run, scored by, seed): the value, the value at the initial image, the ratio.

    `configs` holds each (label, seed)'s run settings, `outputs` the finished runs' images,
    `initial` each seed's initial image; `scorers` the labels whose style terms score (default:
    every label; the controls are scored, never scorers).
    """
    labels = list(dict.fromkeys(label for label, _ in configs))
    records = []
    for seed, start in initial.items():
        finished = [label for label in labels if (label, seed) in outputs]
        for column, scorer in enumerate(scorers if scorers is not None else labels):
            objective = transfer.objective(content, style, config=configs[scorer, seed])
            at_start = _parts(objective, start)
            for label in finished:
                parts = _parts(objective, outputs[label, seed])
                records.append(_record(label, scorer, seed, parts["style"], at_start["style"]))
                if column == 0:
                    records.append(_record(label, CONTENT, seed, parts["content"], at_start["content"]))
    return records


def _record(optimised: str, scored_by: str, seed: int, value: float, at_start: float) -> dict:
    remaining = value / at_start if at_start else None
    return {"optimised": optimised, "scored_by": scored_by, "seed": seed, "value": value,
            "value_at_init": at_start, "remaining": remaining}


def matrix(records: Sequence[dict], rows: Sequence[str], scorers: Sequence[str] | None = None) -> dict:
    """Rows: optimised runs; columns: each scoring loss (default: the rows), then content. Mean and sd over seeds."""
    columns = [*(scorers if scorers is not None else rows), CONTENT]
    mean, spread, seeds = [], [], []
    for row in rows:
        mean.append([])
        spread.append([])
        seeds.append([])
        for column in columns:
            values = [r["remaining"] for r in records
                      if r["optimised"] == row and r["scored_by"] == column and r["remaining"] is not None]
            mean[-1].append(statistics.fmean(values) if values else None)
            spread[-1].append(statistics.stdev(values) if len(values) > 1 else None)
            seeds[-1].append(len(values))
    return {"rows": list(rows), "columns": columns, "mean": mean, "std": spread, "seeds": seeds}
