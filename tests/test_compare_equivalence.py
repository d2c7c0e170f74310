"""The style distance's pieces: the energy distance against brute force, the samples, the matrix, the pair summary.

The test and the verdicts on these distances are tested in test_compare_verdicts.py."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from gatys.compare.equivalence import compare_pair, distance_matrix, energy_distance, layer_samples, style_distance


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


def test_a_pair_is_summarised_by_its_between_and_seed_to_seed_distances():
    pair = compare_pair(points_matrix(np.array([0.0, 1.0, 5.0, 6.5])), [0, 1], [2, 3])
    assert pair["between"] == [5.0, 6.5, 4.0, 5.5] and pair["within_a"] == [1.0] and pair["within_b"] == [1.5]
    assert pair["between_mean"] == 5.25 and pair["between_min"] == 4.0
    assert pair["within_mean"] == 1.25 and pair["within_max"] == 1.5 and pair["ratio"] == pytest.approx(4.2)
    single = compare_pair(points_matrix(np.array([0.0, 1.0])), [0], [1])
    assert single["within_mean"] is None and single["ratio"] is None
