"""A study's two control runs per seed, and the margin they give the equivalence verdicts.

- content only: the first loss's settings with style weight 0, the same start. Its row of the
  cross-evaluation and its distance to the style are the baseline any stylisation must beat (a noise
  image, the old baseline, is beaten by almost anything).
- reference style: the first loss's settings on a second, unrelated painting (--reference-style;
  by default one of two bundled, the one that is not the study's style). The paired effect between
  the first loss's outputs on the study's style and on the reference style is what changing the
  painting does, in the units of the verdicts' effect; the equivalence margin is a fraction of it
  (--margin, default 0.1: two losses are equivalent when their outputs differ by less than a tenth
  of what another painting would change).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..images import load_image
from . import verdicts

CONTENT_ONLY = "control:content-only"
REFERENCE_STYLE = "control:reference-style"
LABELS = (CONTENT_ONLY, REFERENCE_STYLE)
BUNDLED = ("the_scream.jpg", "starry_night.jpg")
SAME_PAINTING = 0.05  # mean absolute difference at 32 px below which two style images are one painting


def bundled_reference(style: str | Path) -> Path:
    """The first bundled reference painting that is not the study's style itself."""
    folder = resources.files("gatys.compare") / "reference"
    candidates = [Path(str(folder / name)) for name in BUNDLED]
    thumb = _thumbnail(load_image(style))
    for path in candidates:
        if float((_thumbnail(load_image(path)) - thumb).abs().mean()) > SAME_PAINTING:
            return path
    return candidates[-1]


def _thumbnail(image: torch.Tensor) -> torch.Tensor:
    return F.interpolate(image, size=(32, 32), mode="area")


def margin_unit(distances: np.ndarray, outputs: list[tuple[str, int]], anchor: str) -> float | None:
    """The paired effect between `anchor`'s outputs and the reference-style control's (None: < 2 seeds)."""
    rows: dict[str, dict[int, int]] = {}
    for index, (label, seed) in enumerate(outputs):
        rows.setdefault(label, {})[seed] = index
    block, seeds = verdicts.pair_block(distances, rows.get(anchor, {}), rows.get(REFERENCE_STYLE, {}))
    if len(seeds) < 2:
        return None
    return verdicts.paired_statistic(block)
