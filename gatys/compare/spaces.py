"""The spaces a study judges its outputs in: the VGG style distance and two that no studied loss optimises.

- vgg: the energy distance between VGG feature distributions (equivalence.py). It sees what the
  losses see, which is also its weakness: it is a sibling of the losses, not an independent judge.
- texture: Portilla–Simoncelli statistics of the luminance (gatys.metrics.texture, plenoptic; no
  learned weights, not VGG). It sees oriented multi-scale structure (stroke direction and length,
  periodicity, edge sharpness); not colour, brightness or layout. Needs `pip install 'gatys[judge]'`;
  without it the space is left out, and the report says so.
- colour: Wasserstein-2 between the pixels' CIELAB distributions, per channel (gatys.metrics.colour_stats).
  It sees the palette; not strokes, texture or layout.

Each space gives a symmetric distance matrix over the same outputs, so the same paired test, interval
and margin (its own reference-style control) give a verdict per space.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import GatysError
from ..metrics.colour_stats import colour_distance_matrix
from ..metrics.texture import texture_distance_matrix

TEXTURE_SIZE = 128  # short side of the luminance the texture statistics are taken from
INDEPENDENT = ("texture", "colour")


def independent_matrices(images: Sequence[torch.Tensor]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({space: distance matrix over images}, {space: why it was left out})."""
    matrices, missing = {"colour": colour_distance_matrix(images)}, {}
    try:
        matrices["texture"] = texture_distance_matrix(images, size=TEXTURE_SIZE)
    except GatysError as error:  # plenoptic is an optional extra
        missing["texture"] = str(error)
    return {name: matrices[name] for name in INDEPENDENT if name in matrices}, missing


def disagreements(words: dict[str, dict[tuple[str, str], str]]) -> list[str]:
    """One line per pair of losses whose verdicts differ between spaces, e.g. 'gram vs moments: vgg different, ...'."""
    spaces = list(words)
    lines = []
    for pair in words[spaces[0]]:
        seen = {space: words[space].get(pair) for space in spaces}
        if len(set(seen.values())) > 1:
            lines.append(f"{pair[0]} vs {pair[1]}: the spaces disagree: "
                         + ", ".join(f"{space} {word}" for space, word in seen.items()))
    return lines
