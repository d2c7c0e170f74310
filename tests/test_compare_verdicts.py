"""The verdict statistics (gatys/compare/verdicts.py) on synthetic studies whose truth is known.

Outputs are points in R^8 with Euclidean distances: output (loss L, seed s) = offset_s + noise + shift_L, where the
seed's offset is shared by every loss at that seed (the pairing: one start per seed) and the noise is independent.
Brute-force references recompute the statistic from its definition on relabelled outputs.
"""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

from gatys.compare import verdicts
from gatys.compare.verdicts import (Interval, PermutationTest, adjust, decide, effect_interval, holm, min_seeds,
                                    pair_block, paired_statistic, paired_test, pooled_interval, pooled_verdicts,
                                    seeds_to_difference, seeds_to_equivalence, smallest_p, split_statistics,
                                    stratified_test, study_verdicts)
from gatys.errors import GatysError

DIMENSIONS = 8
OFFSET, NOISE = 1.0, 0.5      # the seed's shared offset and each output's own noise (standard deviations)


def points(rng: np.random.Generator, seeds: int, shifts: dict[str, float], offset: float = OFFSET,
           noise: float = NOISE) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Outputs of several losses at the same seeds (loss-major), and their (loss, seed) keys."""
    starts = rng.normal(size=(seeds, DIMENSIONS)) * offset
    rows, keys = [], []
    for loss, shift in shifts.items():
        values = starts + rng.normal(size=(seeds, DIMENSIONS)) * noise
        values[:, 0] += shift
        rows.append(values)
        keys += [(loss, seed) for seed in range(seeds)]
    return np.vstack(rows), keys


def study(rng: np.random.Generator, seeds: int, shifts: dict[str, float], **spread) -> tuple[np.ndarray, list]:
    """(Euclidean distances between all outputs, their keys)."""
    values, keys = points(rng, seeds, shifts, **spread)
    return cdist(values, values), keys


def block(rng: np.random.Generator, seeds: int, shift: float, **spread) -> np.ndarray:
    """The 2n × 2n distances of losses A (no shift) and B (shifted), paired by seed."""
    return study(rng, seeds, {"a": 0.0, "b": shift}, **spread)[0]


def true_effect(shift: float, offset: float = OFFSET, noise: float = NOISE) -> float:
    """θ = E‖X − Y'‖ − E‖X − X'‖ for two seeds apart: both differences are N(·, 2(offset² + noise²) I)."""
    rng = np.random.default_rng(12345)
    spread = rng.normal(size=(400_000, DIMENSIONS)) * np.sqrt(2 * (offset**2 + noise**2))
    moved = spread.copy()
    moved[:, 0] += shift
    return float(np.linalg.norm(moved, axis=1).mean() - np.linalg.norm(spread, axis=1).mean())


def brute_statistic(matrix: np.ndarray, first: list[int], second: list[int]) -> float:
    """mean_{s≠t} D(A_s, B_t) − ½[mean_{s≠t} D(A_s, A_t) + mean_{s≠t} D(B_s, B_t)], A_s = first[s], by loops."""
    pairs = [(s, t) for s in range(len(first)) for t in range(len(first)) if s != t]
    between = np.mean([matrix[first[s], second[t]] for s, t in pairs])
    within_a = np.mean([matrix[first[s], first[t]] for s, t in pairs])
    within_b = np.mean([matrix[second[s], second[t]] for s, t in pairs])
    return float(between - 0.5 * (within_a + within_b))


def all_pairs_statistic(matrix: np.ndarray, first: list[int], second: list[int]) -> float:
    """The same with the between mean over all s, t (same-seed pairs included)."""
    between = np.mean([matrix[i, j] for i in first for j in second])
    return brute_statistic(matrix, first, second) - np.mean([matrix[first[s], second[t]] for s in range(len(first))
                                                             for t in range(len(first)) if s != t]) + between


def relabelled(seeds: int, swapped: tuple[bool, ...], offset: int = 0) -> tuple[list[int], list[int]]:
    """Rows of A and of B after swapping the two labels at the seeds marked (A rows first in the block)."""
    first = [offset + seeds * flip + s for s, flip in enumerate(swapped)]
    second = [offset + seeds * (1 - flip) + s for s, flip in enumerate(swapped)]
    return first, second


def upper(trials: int, rate: float) -> float:
    """The upper 99.9 % binomial bound on an observed rejection rate whose true rate is `rate`."""
    return stats.binom.ppf(0.999, trials, rate) / trials


# -- the statistic and the exact test against brute force -----------------------------------------
def test_the_statistic_is_its_definition():
    matrix = block(np.random.default_rng(0), 5, 0.7)
    seeds = list(range(5))
    assert paired_statistic(matrix) == pytest.approx(brute_statistic(matrix, seeds, [5 + s for s in seeds]),
                                                     rel=1e-12)


def test_the_permutation_distribution_is_the_brute_force_one():
    seeds = 5
    matrix = block(np.random.default_rng(1), seeds, 0.8)
    brute = [brute_statistic(matrix, *relabelled(seeds, swapped))
             for swapped in itertools.product((False, True), repeat=seeds)]
    splits = split_statistics(matrix)
    assert len(splits) == 2 ** (seeds - 1)
    # every distinct split appears twice among the 2^n relabellings (it and its global swap)
    np.testing.assert_allclose(np.sort(np.repeat(splits, 2)), np.sort(brute), rtol=0, atol=1e-12)
    observed = brute[0]
    test = paired_test(matrix)
    assert test.exact and test.permutations == 16 and test.smallest_p == 1 / 16
    assert test.statistic == pytest.approx(observed, abs=1e-12)
    assert test.p == np.mean(np.array(brute) >= observed - 1e-12)
    # the between mean over all s, t (same-seed pairs included) gives the same p: its extra term never moves
    full = [all_pairs_statistic(matrix, *relabelled(seeds, swapped))
            for swapped in itertools.product((False, True), repeat=seeds)]
    assert np.mean(np.array(full) >= full[0] - 1e-12) == test.p


def test_monte_carlo_agrees_with_the_exact_test():
    matrix = block(np.random.default_rng(2), 12, 0.5)
    exact = paired_test(matrix)
    sampled = paired_test(matrix, limit=0, permutations=20000, seed=3)
    assert exact.exact and exact.permutations == 2**11 and not sampled.exact
    assert 0.02 < exact.p < 0.9  # a case where the sampling error is visible
    error = np.sqrt(exact.p * (1 - exact.p) / 20000)
    assert abs(sampled.p - exact.p) <= 4 * error + 1 / 20000
    assert sampled.smallest_p == 1 / 20001
    assert paired_test(matrix, limit=0, permutations=500, seed=4) == paired_test(matrix, limit=0, permutations=500,
                                                                                   seed=4)


def test_the_smallest_p_and_the_fewest_seeds():
    assert smallest_p(3) == 0.25 and smallest_p(6) == 1 / 32 and smallest_p(4, strata=4) == 1 / 4096
    assert min_seeds(1) == 6 and min_seeds(3) == 7 and min_seeds(6) == 8 and min_seeds(1, strata=4) == 3
    huge = paired_test(block(np.random.default_rng(5), 6, 50.0))
    assert huge.p == huge.smallest_p == 1 / 32
    assert paired_test(block(np.random.default_rng(5), 3, 50.0)).p == 0.25


# -- the test's level and power -------------------------------------------------------------------
def test_under_the_null_holm_keeps_the_family_wise_rate_and_each_test_its_level():
    rng = np.random.default_rng(6)
    studies = 400
    any_different = 0
    for _ in range(studies):
        matrix, keys = study(rng, 8, {"gram": 0.0, "moments": 0.0, "mmd": 0.0})
        found = study_verdicts(matrix, keys, margin=0.05, resamples=200)
        any_different += any(verdict.word == "different" for verdict in found)
    assert any_different / studies <= upper(studies, 0.05)
    # one test at level 0.05 with 8 seeds rejects with chance floor(0.05·128)/128 = 6/128 under an exact null
    trials = 1200
    rejected = sum(paired_test(block(rng, 8, 0.0)).p < 0.05 for _ in range(trials))
    level = 6 / 128
    low, high = stats.binom.ppf([0.0005, 0.9995], trials, level) / trials
    assert low <= rejected / trials <= high
    assert rejected / trials <= upper(trials, 0.05)


def test_a_clear_effect_is_different_at_8_seeds():
    matrix, keys = study(np.random.default_rng(7), 8, {"gram": 0.0, "moments": 3.0})
    (verdict,) = study_verdicts(matrix, keys, margin=0.05)
    assert verdict.word == "different" and verdict.p == 1 / 128 and verdict.seeds == 8
    assert verdict.ci[0] > 0


def test_a_tiny_true_effect_inside_a_generous_margin_is_equivalent():
    rng = np.random.default_rng(8)
    margin = 0.2  # against seed-to-seed distances of about 4
    found = [study_verdicts(*study(rng, 12, {"gram": 0.0, "moments": 0.0}, noise=0.2), margin=margin)[0]
             for _ in range(20)]
    assert all(-margin < verdict.ci[0] and verdict.ci[1] < margin for verdict in found)
    # a true null is still called `different` by the test at its level (about 5 %); otherwise equivalent
    words = [verdict.word for verdict in found]
    assert set(words) <= {"equivalent", "different"}
    assert words.count("different") <= stats.binom.ppf(0.999, len(found), 0.05)


def test_an_effect_past_the_margin_is_never_equivalent():
    rng = np.random.default_rng(9)
    theta = true_effect(1.5)
    words = {study_verdicts(*study(rng, 10, {"gram": 0.0, "moments": 1.5}), margin=theta / 2, resamples=1000)[0].word
             for _ in range(100)}
    assert "equivalent" not in words
    # At the margin's edge (θ = margin) an interval inside the margin is the TOST's false claim, which its 95 %
    # upper end makes about 5 % likely (observed 4.7 % over 1000 studies). The verdict then is rarer still, since
    # the test, which comes first, mostly finds such an effect `different`.
    trials = 200
    inside = sum(effect_interval(block(rng, 10, 1.5), resamples=1000, seed=index).high < theta
                 for index in range(trials))
    assert inside / trials <= upper(trials, 0.05)


def test_the_interval_covers_the_true_effect_about_as_often_as_it_says():
    # Observed (1000 studies, 10 seeds, nominal 90 %): the expanded interval covered θ = 0.24 (shift 1.5) in 92.3 %
    # of studies, the plain percentile one in 86.4 %; at θ = 0 they covered 99.7 % and 98.3 %, since T is then a
    # degenerate U-statistic (small θ = 0.027: 97.3 %, 95.4 %). The floor is the lower 99.9 % binomial bound for
    # 300 studies at 0.90 (0.843): the interval must not under-cover beyond chance. The ceiling (0.97 for θ > 0)
    # would catch an interval grown uselessly wide; at θ = 0 over-coverage is expected and only makes
    # `equivalent` harder to reach.
    rng = np.random.default_rng(10)
    trials = 300
    for shift, ceiling in ((1.5, 0.97), (0.0, 1.0)):
        theta = true_effect(shift)
        intervals = [effect_interval(block(rng, 10, shift), resamples=2000, seed=index) for index in range(trials)]
        coverage = np.mean([interval.low <= theta <= interval.high for interval in intervals])
        assert stats.binom.ppf(0.001, trials, 0.90) / trials <= coverage <= ceiling, (shift, coverage)


def test_the_interval_is_seeded_and_skips_repeated_seeds():
    matrix = block(np.random.default_rng(11), 6, 0.5)
    first = effect_interval(matrix, seed=1)
    assert first == effect_interval(matrix, seed=1) and first != effect_interval(matrix, seed=2)
    assert first.effect == pytest.approx(paired_statistic(matrix)) and first.low < first.effect < first.high
    assert first.resamples == verdicts.RESAMPLES and effect_interval(matrix, method="percentile").method == "percentile"
    # 3 seeds: a draw holds all three (T) or two distinct ones, s and t (T* = h_st alone, the repeat skipped), so
    # the draws range exactly over the three contrasts; a repeat counted as a pair would reach past them
    three = block(np.random.default_rng(13), 3, 0.5)
    contrast = verdicts.contrasts(three)[np.triu_indices(3, 1)]
    extremes = effect_interval(three, level=1 - 1e-9, method="percentile")
    assert (extremes.low, extremes.high) == (contrast.min(), contrast.max())
    # 2 seeds: the only draw with a pair is the study itself; many such image pairs still pool
    pairs = [block(np.random.default_rng(seed), 2, 0.5) for seed in range(14)]
    two = effect_interval(pairs[0])
    assert two.low == two.high == two.effect
    assert pooled_interval(pairs).resamples == verdicts.RESAMPLES
    # identical outputs of both losses: every distinct-seed pair contrasts to 0, so every draw is exactly 0
    twins = np.tile(cdist(*(2 * [np.random.default_rng(12).normal(size=(5, DIMENSIONS))])), (2, 2))
    assert effect_interval(twins) == Interval(0.0, 0.0, 0.0, 0.90, effect_interval(twins).resamples, "expanded")


# -- family-wise correction -----------------------------------------------------------------------
def holm_rejects(p: np.ndarray, alpha: float) -> set[int]:
    """Holm's procedure as defined: step through the sorted p, rejecting while p_(k) ≤ alpha/(m − k + 1)."""
    rejected = set()
    for rank, index in enumerate(np.argsort(p)):
        if p[index] > alpha / (len(p) - rank):
            break
        rejected.add(int(index))
    return rejected


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_holm_is_the_smallest_alpha_at_which_the_procedure_rejects(count):
    rng = np.random.default_rng(count)
    for _ in range(30):
        p = rng.uniform(0, 0.3, size=count) ** rng.uniform(0.5, 2)
        adjusted = holm(p)
        assert np.all(adjusted >= p) and np.all(adjusted <= 1)
        order = np.argsort(p)
        assert np.all(np.diff(adjusted[order]) >= 0)  # monotone in p
        levels = np.unique(adjusted)
        alphas = np.concatenate([(levels[:-1] + levels[1:]) / 2, levels * 0.999, [levels[-1] * 1.001]])
        for alpha in alphas[alphas < 1]:  # the cap at 1: a level of 1 or more rejects everything anyway
            assert holm_rejects(p, alpha) == {i for i in range(count) if adjusted[i] <= alpha}
    assert holm([0.01, 0.04, 0.03, 0.5]).tolist() == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.4, 0.6]).tolist() == [0.8, 0.8] and holm([0.6, 0.7]).tolist() == [1.0, 1.0]
    bh = adjust([0.01, 0.04, 0.03, 0.5], "bh")
    assert np.all(bh <= holm([0.01, 0.04, 0.03, 0.5]) + 1e-15)
    with pytest.raises(GatysError, match="unknown correction"):
        adjust([0.1], "bonferroni")


# -- the seeds needed -----------------------------------------------------------------------------
def test_the_seeds_to_equivalence_are_monotone_and_fit():
    interval = Interval(0.01, -0.03, 0.06, 0.90, 4000, "expanded")
    margins = (0.02, 0.03, 0.04, 0.065, 0.1)
    needed = [seeds_to_equivalence(interval, 8, margin) for margin in margins]
    assert all(a >= b for a, b in zip(needed, needed[1:])) and needed[0] == 201  # 8·(0.05/0.01)² + 1
    assert needed[0] > needed[1] > needed[2] > needed[3] == needed[4] == 9
    for margin, count in zip(margins, needed):
        shrink = np.sqrt(8 / count)
        assert interval.effect + (interval.high - interval.effect) * shrink < margin
        assert -margin < interval.effect - (interval.effect - interval.low) * shrink
        if count - 1 > 8:  # one seed fewer would not fit
            shrink = np.sqrt(8 / (count - 1))
            assert (interval.effect + (interval.high - interval.effect) * shrink >= margin or
                    interval.effect - (interval.effect - interval.low) * shrink <= -margin)
    assert seeds_to_equivalence(interval, 8, 0.009) is None  # |effect| ≥ margin: no number of seeds helps
    assert seeds_to_equivalence(interval, 8, 0.2) == 9       # it already fits: the next seed


def test_the_seeds_to_difference_are_monotone_and_respect_the_floor():
    def test(statistic: float) -> PermutationTest:
        return PermutationTest(statistic, 0.2, 1 / 128, 128, True, null_sd=0.01)
    needed = [seeds_to_difference(test(statistic), 8, pairs=3) for statistic in (0.002, 0.005, 0.01, 0.02, 0.1)]
    assert all(a >= b for a, b in zip(needed, needed[1:])) and needed[0] > needed[-1]
    assert all(count >= max(9, min_seeds(3)) for count in needed)
    assert seeds_to_difference(test(0.0), 8) is None and seeds_to_difference(test(-0.01), 8) is None
    assert seeds_to_difference(test(1e-9), 8) is None  # beyond SEEDS_LIMIT
    assert seeds_to_difference(test(0.1), 3, pairs=6) == min_seeds(6) == 8
    more_pairs = [seeds_to_difference(test(0.005), 8, pairs=pairs) for pairs in (1, 3, 10)]
    assert more_pairs == sorted(more_pairs)


# -- pooling image pairs --------------------------------------------------------------------------
def test_the_stratified_distribution_is_the_brute_force_one():
    rng = np.random.default_rng(13)
    sizes, scales = (2, 3, 3), (1.0, 0.5, 2.0)
    blocks = [block(rng, seeds, 0.6) * scale for seeds, scale in zip(sizes, scales)]
    test = stratified_test(blocks, scales)
    assert test.exact and test.permutations == 2 * 4 * 4 and test.smallest_p == 1 / 32

    def pooled(swaps: tuple[bool, ...]) -> float:
        parts, start = [], 0
        for matrix, seeds, scale in zip(blocks, sizes, scales):
            parts.append(brute_statistic(matrix, *relabelled(seeds, swaps[start:start + seeds])) / scale)
            start += seeds
        return float(np.mean(parts))
    brute = [pooled(swaps) for swaps in itertools.product((False, True), repeat=sum(sizes))]
    assert test.statistic == pytest.approx(brute[0], abs=1e-12)
    assert test.p == np.mean(np.array(brute) >= brute[0] - 1e-12)
    sampled = stratified_test(blocks, scales, limit=0, permutations=20000, seed=1)
    assert abs(sampled.p - test.p) <= 4 * np.sqrt(test.p * (1 - test.p) / 20000) + 1 / 20000


def test_under_the_null_the_pooled_test_keeps_its_level():
    rng = np.random.default_rng(14)
    trials, scales = 300, (1.0, 3.0, 0.3)
    rejected = 0
    for _ in range(trials):
        blocks = [block(rng, 5, 0.0) * scale for scale in scales]  # 16³ = 4096 splits: exact
        rejected += stratified_test(blocks, scales).p < 0.05
    assert rejected / trials <= upper(trials, 0.05)


def test_a_consistent_small_effect_is_found_pooled_where_no_image_pair_can_reach_it():
    rng = np.random.default_rng(15)
    scales = (1.0, 2.0, 0.5, 1.5)  # image pairs of different scales, each with its own margin
    studies = [study(rng, 4, {"gram": 0.0, "moments": 1.2}) for _ in scales]
    matrices = [matrix * scale for (matrix, _), scale in zip(studies, scales)]
    margins = [0.05 * scale for scale in scales]
    (pooled,) = pooled_verdicts(matrices, [keys for _, keys in studies], margins)
    assert pooled.verdict.word == "different" and pooled.verdict.strata == 4 and pooled.verdict.seeds == 16
    assert pooled.verdict.smallest_p == 1 / 8**4 and pooled.verdict.corrected_p < 0.05
    assert all(own.word == "inconclusive" and own.smallest_p == 1 / 8 for own in pooled.strata)
    assert pooled.agreeing == 0
    assert "over 4 image pairs: different" in pooled.sentence() and "0 of 4 image pairs" in pooled.sentence()
    # the pooled interval is the mean of the pairs' effects, each in units of its margin
    interval = pooled_interval(matrices, margins)
    assert interval.effect == pytest.approx(np.mean([paired_statistic(m) / s for m, s in zip(matrices, margins)]))
    assert pooled.verdict.effect == pytest.approx(interval.effect)


def test_pooling_leaves_out_an_image_pair_without_two_paired_seeds():
    rng = np.random.default_rng(16)
    full = study(rng, 5, {"gram": 0.0, "moments": 0.0})
    short = study(rng, 5, {"gram": 0.0, "moments": 0.0})
    keep = [i for i, (loss, seed) in enumerate(short[1]) if loss == "gram" or seed == 0]
    matrices = [full[0], short[0][np.ix_(keep, keep)]]
    (pooled,) = pooled_verdicts(matrices, [full[1], [short[1][i] for i in keep]], [0.1, 0.1])
    assert pooled.verdict.strata == 1 and pooled.verdict.seeds == 5 and pooled.verdict.pooled
    assert "over 1 image pair: " in pooled.sentence() and "× margin" in pooled.sentence()
    assert "not tested" in pooled.strata[1].reason


# -- the rule, the refusals and the sentence ------------------------------------------------------
def test_fewer_than_two_finished_seeds_are_refused_or_inconclusive_with_a_reason():
    matrix, keys = study(np.random.default_rng(17), 3, {"gram": 0.0, "moments": 1.0})
    keep = [i for i, (loss, seed) in enumerate(keys) if loss == "gram" or seed == 2]
    (verdict,) = study_verdicts(matrix[np.ix_(keep, keep)], [keys[i] for i in keep], margin=0.1)
    assert verdict.word == "inconclusive" and verdict.effect is None and verdict.p is None
    assert verdict.seeds == 1 and "at least 2 seeds" in verdict.reason and "at least 2 seeds" in verdict.sentence()
    (alone,) = study_verdicts(matrix[:3, :3], keys[:3], margin=0.1, losses=["gram", "moments"])
    assert alone.word == "inconclusive" and alone.seeds == 0
    for call in (paired_test, effect_interval, split_statistics):
        with pytest.raises(GatysError, match="at least 2 seeds"):
            call(matrix[np.ix_([0, 3], [0, 3])])


def test_equivalence_needs_enough_seeds_for_its_interval():
    # both losses give the very same outputs: every contrast is 0, the interval [0, 0], p = 1
    for seeds, word in ((3, "inconclusive"), (4, "equivalent")):
        values = np.random.default_rng(18).normal(size=(seeds, DIMENSIONS))
        twins = np.tile(cdist(values, values), (2, 2))
        keys = [(loss, seed) for loss in ("gram", "moments") for seed in range(seeds)]
        (verdict,) = study_verdicts(twins, keys, margin=0.1)
        assert verdict.p == 1.0 and verdict.ci == (0.0, 0.0) and verdict.word == word
    assert "fewer than 4 seeds" in study_verdicts(np.tile(cdist(values[:3], values[:3]), (2, 2)),
                                                  [(loss, s) for loss in "ab" for s in range(3)], 0.1)[0].reason


def test_the_rule_and_the_sentence():
    test = PermutationTest(0.031, 0.0039, 1 / 256, 256, True, 0.004)
    interval = Interval(0.031, 0.020, 0.043, 0.90, 4000, "expanded")
    different = decide("gram", "moments", test, interval, 0.027, [8], margin=0.01, pairs=3)
    assert different.word == "different"
    sentence = different.sentence()
    assert sentence.startswith("gram vs moments: different (effect 0.031, 90 % CI [0.02, 0.043], p = 0.0039, "
                               "Holm-corrected p = 0.027, 8 seeds)")
    small = Interval(0.001, -0.004, 0.006, 0.90, 4000, "expanded")
    assert decide("a", "b", test, small, 0.027, [8], margin=0.01).word == "different"  # the test comes first
    assert "though the 90 % CI lies inside" in decide("a", "b", test, small, 0.027, [8], margin=0.01).reason
    assert decide("a", "b", test, small, 0.2, [8], margin=0.01).word == "equivalent"
    unsure = decide("a", "b", test, interval, 0.2, [8], margin=0.04, pairs=3)
    assert unsure.word == "inconclusive" and unsure.seeds_to_equivalence and unsure.seeds_to_difference
    words = unsure.sentence()
    for number in ("0.031", "[0.02, 0.043]", "p = 0.0039", "Holm-corrected p = 0.2", "8 seeds",
                   f"about {unsure.seeds_to_equivalence} seeds might show equivalence",
                   f"about {unsure.seeds_to_difference} seeds might show a difference"):
        assert number in words
    far = decide("a", "b", test, interval, 0.2, [8], margin=0.02)
    assert far.seeds_to_equivalence is None and "equivalence looks out of reach" in far.sentence()
    assert re.search(r"BH-corrected p = 0\.2", decide("a", "b", test, interval, 0.2, [8], 0.05,
                                                     correction="bh").sentence())


def test_study_verdicts_correct_over_all_pairs_and_pair_by_seed():
    rng = np.random.default_rng(19)
    matrix, keys = study(rng, 8, {"gram": 0.0, "moments": 3.0, "mmd": 0.0})
    found = study_verdicts(matrix, keys, margin=0.05)
    assert [(v.a, v.b) for v in found] == [("gram", "moments"), ("gram", "mmd"), ("moments", "mmd")]
    p = [v.p for v in found]
    assert [v.corrected_p for v in found] == pytest.approx(holm(p).tolist())
    # the rows may come in any order: pair_block pairs them by seed
    order = rng.permutation(len(keys))
    shuffled = study_verdicts(matrix[np.ix_(order, order)], [keys[i] for i in order], margin=0.05,
                              losses=["gram", "moments", "mmd"])
    assert [v.p for v in shuffled] == p and [v.effect for v in shuffled] == pytest.approx([v.effect for v in found])
    cut, seeds = pair_block(matrix, {0: 0, 2: 2, 5: 5}, {2: 10, 5: 13, 7: 15})
    assert seeds == (2, 5) and np.array_equal(cut, matrix[np.ix_([2, 5, 10, 13], [2, 5, 10, 13])])


def test_bad_inputs_are_refused_with_a_message():
    matrix, keys = study(np.random.default_rng(20), 3, {"gram": 0.0, "moments": 0.0})
    with pytest.raises(GatysError, match="2n × 2n"):
        paired_test(matrix[:5, :5])
    with pytest.raises(GatysError, match="margin"):
        study_verdicts(matrix, keys, margin=0.0)
    with pytest.raises(GatysError, match="appears twice"):
        study_verdicts(matrix, keys[:-1] + [keys[0]], margin=0.1)
    with pytest.raises(GatysError, match="one positive scale"):
        stratified_test([matrix], [0.0])
    with pytest.raises(GatysError, match="one distance matrix"):
        pooled_verdicts([matrix], [keys, keys], [0.1])


def test_benjamini_hochberg_against_scipy_and_a_brute_force_definition():
    from gatys.compare.verdicts import benjamini_hochberg
    rng = np.random.default_rng(7)
    for size in (1, 2, 5, 21):
        p = rng.uniform(0, 0.2, size)
        m = len(p)
        brute = [min(1.0, min(m * p[j] / (sorted(p).index(p[j]) + 1) for j in range(m) if p[j] >= p[i]))
                 for i in range(m)]
        np.testing.assert_allclose(benjamini_hochberg(p), brute, rtol=1e-12)
        scipy_stats = pytest.importorskip("scipy.stats")
        if hasattr(scipy_stats, "false_discovery_control"):  # SciPy >= 1.11
            np.testing.assert_allclose(benjamini_hochberg(p), scipy_stats.false_discovery_control(p), rtol=1e-12)
