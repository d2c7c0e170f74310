"""The style distance between a study's outputs (the test and the verdicts on it are in verdicts.py).

Style distance between two images a and b (fixed; documented in DISTANCE):

    D(a, b) = mean over the style layers l of ED(F_l(a)/s_l, F_l(b)/s_l)
    ED(X, Y) = 2·E‖x − y‖ − E‖x − x'‖ − E‖y − y'‖      (energy distance, V-statistics)

with each image's positions at layer l as samples, s_l the style's RMS activation there
(so layers weigh alike), over a fixed subset of at most DISTANCE_POSITIONS positions per
layer (seeded), in float64. ED is zero exactly when the two distributions are equal, and it
compares whole distributions, not the means, Grams or projections the losses match.

compare_pair describes two losses' outputs by their between-loss and seed-to-seed distances (means,
extremes, their ratio); verdicts.py tests them, paired by seed.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

DISTANCE_POSITIONS = 1024
DISTANCE_SEED = 0
DISTANCE = ("D(a, b) = mean over the style layers of the energy distance 2E‖x−y‖ − E‖x−x'‖ − E‖y−y'‖ between "
            "the two images' feature vectors (positions as samples), each layer divided by the style's RMS "
            f"activation, over a fixed subset of at most {DISTANCE_POSITIONS} positions per layer (seed "
            f"{DISTANCE_SEED}), float64")


def layer_samples(feats: dict[str, torch.Tensor], scales: dict[str, float],
                  count: int = DISTANCE_POSITIONS, seed: int = DISTANCE_SEED) -> dict[str, torch.Tensor]:
    """Features (1, C, H, W) by layer → (K, C) float64 samples: a fixed subset of positions, divided by s_l."""
    samples = {}
    for layer, value in feats.items():
        rows = value[0].flatten(1).T.double() / scales[layer]
        if rows.shape[0] > count:
            order = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(seed))
            rows = rows[order[:count].to(rows.device)]
        samples[layer] = rows.cpu()
    return samples


def mean_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """E‖x − y‖ over all pairs of rows."""
    return float(torch.cdist(x, y, compute_mode="use_mm_for_euclid_dist").mean())


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """2·E‖x − y‖ − E‖x − x'‖ − E‖y − y'‖ between the rows of x and y (V-statistics)."""
    return 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)


def distance_matrix(images: list[dict[str, torch.Tensor]]) -> np.ndarray:
    """D between every pair of images' samples (layer_samples); symmetric with a zero diagonal."""
    layers = list(images[0]) if images else []
    own = [{layer: mean_distance(image[layer], image[layer]) for layer in layers} for image in images]
    matrix = np.zeros((len(images), len(images)))
    for i, j in itertools.combinations(range(len(images)), 2):
        parts = [2 * mean_distance(images[i][layer], images[j][layer]) - own[i][layer] - own[j][layer]
                 for layer in layers]
        matrix[i, j] = matrix[j, i] = float(np.mean(parts))
    return matrix


def style_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """D(a, b) for two images' samples."""
    return float(np.mean([energy_distance(a[layer], b[layer]) for layer in a]))


def compare_pair(distances: np.ndarray, a: list[int], b: list[int]) -> dict:
    """Between-loss and seed-to-seed distances of two losses' outputs (indices into distances)."""
    between = [float(distances[i, j]) for i in a for j in b]
    within_a = [float(distances[i, j]) for i, j in itertools.combinations(a, 2)]
    within_b = [float(distances[i, j]) for i, j in itertools.combinations(b, 2)]
    within = within_a + within_b
    between_mean = float(np.mean(between)) if between else None
    within_mean = float(np.mean(within)) if within else None
    ratio = between_mean / within_mean if within_mean and between_mean is not None else None
    return {"between": between, "within_a": within_a, "within_b": within_b,
            "between_mean": between_mean, "between_min": min(between, default=None),
            "within_mean": within_mean, "within_max": max(within, default=None), "ratio": ratio}
