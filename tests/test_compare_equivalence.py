"""The equivalence test's pieces: the energy distance against brute force, the permutation test, the verdicts."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from gatys.compare.equivalence import (compare_pair, distance_matrix, energy_distance, layer_samples,
                                       permutation_test, style_distance, verdict)


def brute_energy(x: np.ndarray, y: np.ndarray) -> float:
    def mean_norm(a, b):
        return np.mean([np.linalg.norm(p - q) for p in a for q in b])
    return 2 * mean_norm(x, y) - mean_norm(x, x) - mean_norm(y, y)


def test_energy_distance_against_brute_force(generator):
    x = torch.randn(30, 5, generator=generator, dtype=torch.float64)
    y = torch.randn(20, 5, generator=generator, dtype=torch.float64) + 0.5
    assert energy_distance(x, y) == pytest.approx(brute_energy(x.numpy(), y.numpy()), rel=1e-9)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    assert energy_distance(x, x[torch.randperm(30, generator=generator)]) == pytest.approx(0.0, abs=1e-9)


def test_layer_samples_are_a_fixed_subset_divided_by_the_scale(generator):
    feats = {"relu1_1": torch.rand(1, 3, 40, 40, generator=generator), "relu2_1": torch.rand(1, 4, 5, 5)}
    first = layer_samples(feats, {"relu1_1": 2.0, "relu2_1": 1.0}, count=100)
    again = layer_samples(feats, {"relu1_1": 2.0, "relu2_1": 1.0}, count=100)
    assert first["relu1_1"].shape == (100, 3) and first["relu2_1"].shape == (25, 4)
    assert torch.equal(first["relu1_1"], again["relu1_1"])
    assert first["relu1_1"].max() <= 0.5 and first["relu1_1"].dtype == torch.float64


def test_the_distance_matrix_agrees_with_the_pairwise_distance(generator):
    images = [{"a": torch.randn(12, 3, generator=generator, dtype=torch.float64) + shift,
               "b": torch.randn(9, 2, generator=generator, dtype=torch.float64)} for shift in (0, 0, 2)]
    matrix = distance_matrix(images)
    assert np.allclose(matrix, matrix.T) and np.all(np.diag(matrix) == 0)
    for i, j in itertools.combinations(range(3), 2):
        assert matrix[i, j] == pytest.approx(style_distance(images[i], images[j]), rel=1e-9)
    assert matrix[0, 2] > matrix[0, 1]


def points_matrix(points: np.ndarray) -> np.ndarray:
    return np.abs(points[:, None] - points[None, :])


def test_identical_sets_give_p_one():
    group = np.array([0.0, 1.0, 2.5])
    result = permutation_test(points_matrix(np.concatenate([group, group])), 3)
    assert result["p"] == 1.0 and result["exact"] and result["splits"] == math.comb(6, 3)
    assert permutation_test(np.zeros((4, 4)), 2)["p"] == 1.0  # all outputs the same image


def test_clearly_different_sets_give_a_small_p():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.1, 5), rng.normal(10, 0.1, 5)])
    result = permutation_test(points_matrix(points), 5)
    assert result["p"] == pytest.approx(2 / math.comb(10, 5))  # the split and its mirror
    assert result["p"] == result["smallest_p"] < 0.01


def test_many_seeds_draw_random_splits_reproducibly():
    rng = np.random.default_rng(1)
    points = np.concatenate([rng.normal(0, 1, 12), rng.normal(3, 1, 12)])
    first = permutation_test(points_matrix(points), 12, permutations=2000)
    assert not first["exact"] and first["splits"] == 2000
    assert first == permutation_test(points_matrix(points), 12, permutations=2000)
    assert first["p"] < 0.01


def test_verdicts_follow_the_seed_to_seed_spread():
    close = compare_pair(points_matrix(np.array([0.0, 1.0, 0.2, 0.9])), [0, 1], [2, 3])
    assert verdict("a", "b", close, 2)[0] == "indistinguishable"
    far = compare_pair(points_matrix(np.array([0.0, 1.0, 5.0, 6.0])), [0, 1], [2, 3])
    word, sentence = verdict("a", "b", far, 2)
    assert word == "different" and "2 seeds" in sentence and "smallest possible" in sentence
    overlapping = compare_pair(points_matrix(np.array([0.0, 1.0, 1.5, 1.6])), [0, 1], [2, 3])
    assert verdict("a", "b", overlapping, 2)[0] == "unresolved"
    single = compare_pair(points_matrix(np.array([0.0, 1.0])), [0], [1])
    assert verdict("a", "b", single, 1)[0] == "untested"
