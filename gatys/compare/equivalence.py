"""The equivalence test: a style distance none of the studied losses computes, and a permutation test.

Style distance between two images a and b (fixed; documented in DISTANCE):

    D(a, b) = mean over the style layers l of ED(F_l(a)/s_l, F_l(b)/s_l)
    ED(X, Y) = 2·E‖x − y‖ − E‖x − x'‖ − E‖y − y'‖      (energy distance, V-statistics)

with each image's positions at layer l as samples, s_l the style's RMS activation there
(so layers weigh alike), over a fixed subset of at most DISTANCE_POSITIONS positions per
layer (seeded), in float64. ED is zero exactly when the two distributions are equal, and it
compares whole distributions, not the means, Grams or projections the losses match.

Two losses' outputs are compared with the seed-to-seed distances of each: the ratio of the
mean between-loss distance to the mean within-loss one, and a permutation test over the
pooled outputs (statistic: mean between − mean within; exact over every split when there are
few, else PERMUTATIONS random splits).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

DISTANCE_POSITIONS = 1024
DISTANCE_SEED = 0
PERMUTATIONS = 10000
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


def _split_statistic(distances: np.ndarray, first: np.ndarray) -> float:
    """mean distance between the two groups − mean distance within them (pairs inside either group)."""
    second = ~first
    between = distances[np.ix_(first, second)]
    same = np.outer(first, first) | np.outer(second, second)
    upper = np.triu(np.ones_like(same, dtype=bool), 1)
    return float(between.mean() - distances[same & upper].mean())


def permutation_test(distances: np.ndarray, first: int, permutations: int = PERMUTATIONS,
                     seed: int = 0) -> dict:
    """Are the first `first` items (one loss's outputs) farther from the rest than from each other?

    Statistic: mean between-group distance − mean within-group distance. p = the share of splits
    of the pooled items into groups of the same sizes whose statistic is at least the observed
    one (every split when there are at most `permutations`, else that many random ones and the
    observed). Identical groups give p = 1; `smallest_p` is the least p the split count allows.
    """
    count = len(distances)
    if not 1 <= first < count or count < 3:
        return {"statistic": None, "p": None, "smallest_p": None, "splits": 0, "exact": True}
    labels = np.zeros(count, dtype=bool)
    labels[:first] = True
    observed = _split_statistic(distances, labels)
    tolerance = 1e-12 * max(1.0, float(np.abs(distances).max()))
    total = math.comb(count, first)
    exact = total <= permutations
    if exact:
        splits = itertools.combinations(range(count), first)
    else:
        rng = np.random.default_rng(seed)
        splits = itertools.chain([tuple(range(first))],
                                 (rng.permutation(count)[:first] for _ in range(permutations - 1)))
    at_least = drawn = 0
    for members in splits:
        mask = np.zeros(count, dtype=bool)
        mask[list(members)] = True
        drawn += 1
        at_least += _split_statistic(distances, mask) >= observed - tolerance
    symmetric = 2 if 2 * first == count else 1  # a split and its mirror have the same statistic
    return {"statistic": observed, "p": at_least / drawn, "smallest_p": symmetric / total if exact else 1 / drawn,
            "splits": drawn, "exact": exact}


def compare_pair(distances: np.ndarray, a: list[int], b: list[int]) -> dict:
    """Between-loss and seed-to-seed distances of two losses' outputs (indices into distances)."""
    between = [float(distances[i, j]) for i in a for j in b]
    within_a = [float(distances[i, j]) for i, j in itertools.combinations(a, 2)]
    within_b = [float(distances[i, j]) for i, j in itertools.combinations(b, 2)]
    within = within_a + within_b
    order = a + b
    test = permutation_test(distances[np.ix_(order, order)], len(a))
    between_mean = float(np.mean(between)) if between else None
    within_mean = float(np.mean(within)) if within else None
    ratio = between_mean / within_mean if within_mean and between_mean is not None else None
    return {"between": between, "within_a": within_a, "within_b": within_b,
            "between_mean": between_mean, "between_min": min(between, default=None),
            "within_mean": within_mean, "within_max": max(within, default=None), "ratio": ratio,
            "p": test["p"], "smallest_p": test["smallest_p"], "splits": test["splits"],
            "statistic": test["statistic"]}


def verdict(a: str, b: str, pair: dict, seeds: int) -> tuple[str, str]:
    """(one word, one sentence with the numbers) for a pair of losses.

    indistinguishable  the mean between-loss distance is within the seed-to-seed spread (≤ the
                       largest distance between two seeds of either loss)
    different          every between-loss distance exceeds every seed-to-seed distance
    unresolved         in between
    """
    if pair["within_max"] is None or pair["between_mean"] is None:
        return "untested", (f"{a} vs {b}: not tested: the seed-to-seed spread needs at least 2 finished seeds "
                            f"of each loss")
    between, spread = pair["between_mean"], pair["within_max"]
    ratio = "∞" if pair["ratio"] is None else f"{pair['ratio']:.2f}"
    p = "–" if pair["p"] is None else f"{pair['p']:.3g}"
    least = "" if pair["smallest_p"] is None else f", the smallest possible with {seeds} seeds per loss being " \
                                                  f"{pair['smallest_p']:.3g}"
    numbers = (f"the mean distance between their outputs is {between:.3g} against seed-to-seed distances up to "
               f"{spread:.3g} (ratio of means {ratio}) over {seeds} seeds each; permutation p = {p}{least}")
    if between <= spread:
        return "indistinguishable", f"{a} vs {b}: indistinguishable at this budget: {numbers}."
    if pair["between_min"] > spread:
        return "different", f"{a} vs {b}: different at this budget: every output of one is farther from every " \
                            f"output of the other than any two seeds of either are from each other; {numbers}."
    return "unresolved", f"{a} vs {b}: unresolved at this budget: the distances overlap; {numbers}."
