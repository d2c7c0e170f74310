"""Verdicts on pairs of style losses from the style distances between their outputs (issue 29).

Pure: numpy and scipy, and GatysError; this module must not import torch, the engine or any other gatys module.

The data. A study runs each loss at seeds s = 0..n−1, and at seed s every loss starts from the same noise image,
so the outputs are PAIRED BY SEED. D is the symmetric, zero-diagonal matrix of style distances between outputs.
For two losses A and B, a *block* is the 2n × 2n part of D over A_0..A_{n−1}, B_0..B_{n−1}, in that order, at
the n seeds both finished (pair_block cuts it from a study's matrix; an output without its partner is left out).

The statistic, which is also the effect. For two seeds s ≠ t,

    h_st = ½[D(A_s, B_t) + D(A_t, B_s)] − ½[D(A_s, A_t) + D(B_s, B_t)]      (between − within, two seeds apart)
    T    = mean over the n(n−1)/2 pairs s < t of h_st
         = mean_{s≠t} D(A_s, B_t) − ½[mean_{s≠t} D(A_s, A_t) + mean_{s≠t} D(B_s, B_t)].

Same-seed distances D(A_s, B_s) are left out: two outputs of one start are closer than two of different starts,
and would pull T below zero when the losses agree. (The between mean over all s, t is
((n−1)/n)·mean_{s≠t} + (1/n)·mean_s D(A_s, B_s), whose second term no swap below changes: that form gives the same
p-values, only a biased effect.) T estimates, without bias,

    θ = E D(A, B') − ½[E D(A, A') + E D(B, B')]      (A, A', B, B' outputs of independent seeds)

which is half the energy distance between the two losses' output distributions when D is a metric of negative
type (Euclidean is), and the squared distance between their mean embeddings when D is a squared Hilbert-space
distance (the study's style distance, a mean of per-layer energy distances, is one). θ ≥ 0, and θ = 0 when the
two losses give the same distribution of outputs; T itself may be negative.

The null hypothesis and the paired permutation test. H0: at each seed the pair (A_s, B_s) is exchangeable (which
loss ran makes no difference to what a seed gives), the seeds independent. Under H0, swapping the two labels at
any set of seeds leaves the joint distribution alone: with ε_s = −1 where swapped, +1 elsewhere,

    T(ε) = Σ_{s<t} ε_s ε_t h_st / C(n, 2),      Var_ε T(ε) = Σ_{s<t} h_st² / C(n, 2)²  (ε uniform).

ε and −ε give the same T, so there are 2^(n−1) distinct splits (ε_0 = +1). p = #{splits with T(ε) ≥ T} / 2^(n−1)
when 2^(n−1) ≤ EXACT_LIMIT (exact), else (1 + #{r: T(ε_r) ≥ T}) / (1 + R) over R uniform random ε (Monte Carlo,
also valid at its level). One-sided: only "farther apart than seed to seed" is evidence of a difference.
The smallest p is 2^−(n−1): 3 seeds give 0.25, and 6 are the fewest that reach p < 0.05 (1/32) before any
correction; over m pairs with Holm, the fewest with m·2^−(n−1) < α (min_seeds: 7 for 3 pairs, 8 for 6).

Why not the free test (the one this module replaced shuffled all 2n outputs between the two groups): under H0
the 2n outputs are not exchangeable, because two outputs of one seed share a start and are closer than two of
different seeds. Shuffling freely makes splits that put a seed's two outputs in one group, which no labelling
of the study can, so its reference distribution is not that of the statistic under H0. Where seeds matter it
is far too conservative, and so blind: in a simulation (6 seeds, seed offsets twice the noise) it rejected none
of 300 true nulls and none of 300 differences that the paired test found in 38 % of them; in general its level
is not α.

Family-wise correction (holm). For the sorted p_(1) ≤ … ≤ p_(m) of a study's m pairs,
p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j)); calling `different` where p̃ < α keeps the chance of any false
`different` ≤ α whatever the dependence between pairs (they share losses). "bh" (Benjamini–Hochberg,
written here: SciPy's needs 1.11) controls the false discovery rate instead; Holm is the default.

The interval (effect_interval). A bootstrap over seeds: draw n seed indices with replacement, keeping each seed's
A and B together. On a draw with counts m_s, T* = Σ_{s≠t} m_s m_t h_st / Σ_{s≠t} m_s m_t: the mean of h over the
drawn pairs of DISTINCT seeds. A seed drawn twice is not two independent seeds: its "between" pair would be a
same-seed distance and its "within" pair a zero, both biased, so such pairs are skipped (h has a zero diagonal);
a draw with one distinct seed has no pair left and is drawn again (chance n^(1−n)). The ends are the expanded
percentile interval (Hesterberg 2015), the α' and 1 − α' quantiles of T* with
α' = Φ(−√(n/(n−1))·t_{n−1}(1 − (1 − level)/2)): the plain percentile interval is too narrow at a few seeds
(simulated, 8–10 seeds, nominal 90 %: plain 0.85–0.86, expanded 0.92 coverage of a θ > 0; both over-cover at θ = 0,
where T is a degenerate U-statistic, which only makes `equivalent` harder). "percentile" gives the plain one. The
generator is seeded: the same inputs give the same interval. Level 0.90 two-sided by default: its ends are the
two one-sided 95 % bounds, so "the interval lies inside the margin" is the TOST equivalence test at α = 0.05.

The verdict (decide).
    different     corrected p < α
    equivalent    else, when the whole interval lies inside (−margin, +margin), from at least INTERVAL_SEEDS seeds
                  (fewer: the bootstrap has too few distinct draws; 3 seeds covered 0.6–0.8 at nominal 0.9)
    inconclusive  else, or when fewer than 2 seeds are paired; with the seeds that might decide it:
      seeds_to_equivalence  the smallest n' whose interval, each end's distance from T scaled by √(n/n') and T
                            held, fits inside the margin; None when |T| ≥ margin or n' > SEEDS_LIMIT
      seeds_to_difference   the smallest n' ≥ min_seeds(m, α) with z·√(n'(n'−1)/(n(n−1))) ≥ Φ⁻¹(1 − α/m), where
                            z = T / sd_ε T(ε), which grows so with T held (the swap sd shrinks as 1/√(n(n−1)));
                            None when T ≤ 0 or n' > SEEDS_LIMIT.
    Both are planning numbers from a normal approximation, not promises.
The margin is the caller's: the study sets it from a reference scale (e.g. a fraction of the distance between
the style's outputs and those of an unrelated style).

Pooling image pairs (stratified_test, pooled_interval, pooled_verdicts). With K image pairs (strata), pair k with
its own margin M_k, the pooled statistic and effect is S = (1/K)·Σ_k T_k / M_k: each pair's effect in units of
its own margin, so pairs of different scales pool (with one margin for all, S is the mean effect over it: the
same decisions). The test swaps labels within seed within image pair, independently across pairs: exact over
the Π_k 2^(n_k−1) splits when there are at most EXACT_LIMIT, else Monte Carlo. The interval resamples seeds
within each pair (independently, a degenerate draw drawn again), expanded with the fewest seeds of a pair and
Σ_k (n_k − 1) degrees of freedom. The rule is the same, with margin 1; a pooled verdict also counts the image
pairs whose own verdicts (Holm over that pair's study) agree with it.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from ..errors import GatysError

EXACT_LIMIT = 2**16      # enumerate every split when there are at most this many
PERMUTATIONS = 9999      # random splits (R) beyond that
RESAMPLES = 4000         # bootstrap draws
ALPHA = 0.05
LEVEL = 0.90             # two-sided: the TOST convention for an equivalence test at α = 0.05
INTERVAL_SEEDS = 4       # the fewest paired seeds (per image pair) from which `equivalent` may be declared
SEEDS_LIMIT = 1000       # seeds-needed estimates beyond this are reported as unreachable (None)
CORRECTIONS = {"holm": "Holm", "bh": "BH"}
METHODS = ("expanded", "percentile")


@dataclass(frozen=True)
class PermutationTest:
    """A paired (or stratified) permutation test."""

    statistic: float     # T (or the pooled S)
    p: float
    smallest_p: float    # 1/2^(n−1) exact (1/Π_k 2^(n_k−1) pooled), 1/(1 + R) Monte Carlo
    permutations: int    # the splits enumerated (exact) or drawn (R)
    exact: bool
    null_sd: float       # the statistic's sd over uniform random swaps, for seeds_to_difference


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval for the effect."""

    effect: float
    low: float
    high: float
    level: float
    resamples: int       # bootstrap draws (a degenerate one, with a single distinct seed, is drawn again)
    method: str


@dataclass(frozen=True)
class Verdict:
    """The verdict on a pair of losses, with the numbers behind it; a pooled one counts in margins."""

    a: str
    b: str
    word: str                        # "different", "equivalent" or "inconclusive"
    seeds: int                       # paired finished seeds (all image pairs together, pooled)
    effect: float | None
    ci: tuple[float, float] | None
    level: float
    p: float | None
    corrected_p: float | None
    smallest_p: float | None
    margin: float
    alpha: float
    correction: str                  # "Holm" or "BH"
    reason: str
    seeds_to_equivalence: int | None = None   # per image pair, pooled
    seeds_to_difference: int | None = None
    strata: int = 1                  # image pairs pooled
    pooled: bool = False             # pooled over image pairs: the effect and margin count in margins

    def sentence(self) -> str:
        """All the numbers in words, e.g. "gram vs moments: different (effect 0.031, 90 % CI [0.020, 0.043], ...)"."""
        where = f" over {self.strata} image pair{'s' if self.strata != 1 else ''}" if self.pooled else ""
        if self.effect is None:
            return f"{self.a} vs {self.b}{where}: {self.word}: {self.reason}."
        unit = " × margin" if self.pooled else ""
        numbers = (f"effect {self.effect:.3g}{unit}, {self.level * 100:g} % CI [{self.ci[0]:.3g}, {self.ci[1]:.3g}], "
                   f"p = {self.p:.2g}, {self.correction}-corrected p = {self.corrected_p:.2g}, {self.seeds} seeds")
        return f"{self.a} vs {self.b}{where}: {self.word} ({numbers}): {self.reason}{self._outlook()}."

    def _outlook(self) -> str:
        if self.word != "inconclusive":
            return ""
        unit = " per image pair" if self.pooled else ""

        def seeds(count: int | None, what: str) -> str:
            return f"about {count} seeds{unit} might show {what}" if count is not None else \
                f"{what} looks out of reach within {SEEDS_LIMIT} seeds{unit}"
        return f"; {seeds(self.seeds_to_equivalence, 'equivalence')}, {seeds(self.seeds_to_difference, 'a difference')}"


@dataclass(frozen=True)
class PooledVerdict:
    """A verdict pooled over image pairs, the image pairs' own verdicts, and how many of those agree."""

    verdict: Verdict
    strata: tuple[Verdict, ...]
    agreeing: int

    def sentence(self) -> str:
        return (f"{self.verdict.sentence()[:-1]}; {self.agreeing} of {len(self.strata)} image pairs' own verdicts "
                f"agree.")


# -- the data -------------------------------------------------------------------------------------
def pair_block(distances: np.ndarray, a: Mapping[int, int], b: Mapping[int, int]) -> tuple[np.ndarray, tuple[int, ...]]:
    """(the 2n × 2n block over A's then B's outputs at the n seeds both have, those seeds); a, b: seed → row."""
    seeds = tuple(sorted(set(a) & set(b)))
    rows = [a[seed] for seed in seeds] + [b[seed] for seed in seeds]
    return np.asarray(distances, dtype=np.float64)[np.ix_(rows, rows)], seeds


def contrasts(block: np.ndarray) -> np.ndarray:
    """h (n × n, symmetric, zero diagonal): h_st = ½[D(A_s,B_t) + D(A_t,B_s)] − ½[D(A_s,A_t) + D(B_s,B_t)]."""
    block = np.asarray(block, dtype=np.float64)
    if block.ndim != 2 or block.shape[0] != block.shape[1] or block.shape[0] % 2:
        raise GatysError(f"a pair's distances must be a 2n × 2n matrix (n outputs of each loss, paired by seed), "
                         f"got shape {block.shape}")
    if not np.all(np.isfinite(block)):
        raise GatysError("a pair's distances must be finite")
    seeds = block.shape[0] // 2
    if seeds < 2:
        raise GatysError(f"a paired test needs at least 2 seeds that both losses finished, got {seeds}")
    within_a, within_b, between = block[:seeds, :seeds], block[seeds:, seeds:], block[:seeds, seeds:]
    h = 0.5 * (between + between.T) - 0.5 * (within_a + within_b)
    np.fill_diagonal(h, 0.0)
    return h


def paired_statistic(block: np.ndarray) -> float:
    """T = mean_{s<t} h_st: mean between-loss distance − mean within-loss distance, seeds apart."""
    h = contrasts(block)
    return float(h[np.triu_indices(len(h), 1)].mean())


# -- the permutation tests ------------------------------------------------------------------------
def _all_signs(seeds: int) -> np.ndarray:
    """Every ε in {±1}^n with ε_0 = +1 (2^(n−1) rows), all +1 (the observed labels) first."""
    codes = np.arange(2 ** (seeds - 1))[:, None] >> np.arange(seeds - 1)
    return np.hstack([np.ones((len(codes), 1)), 1.0 - 2.0 * (codes & 1)])


def _swapped(h: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """T(ε) = Σ_{s<t} ε_s ε_t h_st / C(n, 2) for each row ε of signs."""
    seeds = len(h)
    return ((signs @ h) * signs).sum(axis=1) / (seeds * (seeds - 1))


def _null_variance(h: np.ndarray) -> float:
    return float(np.square(h[np.triu_indices(len(h), 1)]).sum()) / math.comb(len(h), 2) ** 2


def split_statistics(block: np.ndarray, limit: int = EXACT_LIMIT) -> np.ndarray:
    """T at each of the 2^(n−1) distinct splits (labels swapped at some seeds), the observed split first."""
    h = contrasts(block)
    if 2 ** (len(h) - 1) > limit:
        raise GatysError(f"{len(h)} seeds make {2 ** (len(h) - 1)} splits, more than the limit {limit}")
    return _swapped(h, _all_signs(len(h)))


def paired_test(block: np.ndarray, *, limit: int = EXACT_LIMIT, permutations: int = PERMUTATIONS,
                seed: int = 0) -> PermutationTest:
    """The paired permutation test of "A's outputs differ from B's" for one pair of losses (see the module doc)."""
    return stratified_test([block], limit=limit, permutations=permutations, seed=seed)


def stratified_test(blocks: Sequence[np.ndarray], scales: Sequence[float] | None = None, *,
                    limit: int = EXACT_LIMIT, permutations: int = PERMUTATIONS, seed: int = 0) -> PermutationTest:
    """The permutation test of S = (1/K)·Σ_k T_k / scales_k, swapping labels within seed within block."""
    hs, weights = _strata(blocks, scales)
    splits = 2 ** sum(len(h) - 1 for h in hs)
    null_sd = math.sqrt(sum(w * w * _null_variance(h) for h, w in zip(hs, weights)))
    if splits <= limit:
        pooled = np.zeros(1)
        for h, weight in zip(hs, weights):
            pooled = (pooled[:, None] + weight * _swapped(h, _all_signs(len(h)))[None, :]).ravel()
        observed = pooled[0]
        return PermutationTest(float(observed), float(np.mean(pooled >= observed - _tolerance(hs, weights))),
                               1.0 / splits, splits, True, null_sd)
    rng = np.random.default_rng(seed)
    observed = sum(w * _swapped(h, np.ones((1, len(h))))[0] for h, w in zip(hs, weights))
    drawn = sum(w * _swapped(h, rng.choice([-1.0, 1.0], size=(permutations, len(h)))) for h, w in zip(hs, weights))
    at_least = int(np.sum(drawn >= observed - _tolerance(hs, weights)))
    return PermutationTest(float(observed), (1 + at_least) / (1 + permutations), 1.0 / (1 + permutations),
                           permutations, False, null_sd)


def _strata(blocks: Sequence[np.ndarray], scales: Sequence[float] | None) -> tuple[list[np.ndarray], list[float]]:
    """Each block's h, and its weight 1/(K·scale) in the pooled statistic."""
    if not blocks:
        raise GatysError("a pooled test needs at least one image pair")
    scales = [1.0] * len(blocks) if scales is None else [float(scale) for scale in scales]
    if len(scales) != len(blocks) or not all(math.isfinite(scale) and scale > 0 for scale in scales):
        raise GatysError(f"need one positive scale (margin) per image pair: {len(blocks)} pairs, scales {scales}")
    return [contrasts(block) for block in blocks], [1.0 / (len(blocks) * scale) for scale in scales]


def _tolerance(hs: list[np.ndarray], weights: list[float]) -> float:
    """Splits whose statistic equals the observed one up to rounding count as at least as large."""
    return 1e-9 * sum(w * float(np.abs(h).mean()) for h, w in zip(hs, weights))


# -- family-wise correction -----------------------------------------------------------------------
def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j)), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, steps)
    return adjusted


def adjust(p_values: Sequence[float], method: str = "holm") -> np.ndarray:
    """Adjusted p-values over a family: "holm" (family-wise error, the default) or "bh" (false discovery rate)."""
    if method not in CORRECTIONS:
        raise GatysError(f"unknown correction {method!r}: choose one of {', '.join(CORRECTIONS)}")
    if len(p_values) == 0:
        return np.zeros(0)
    return holm(p_values) if method == "holm" else benjamini_hochberg(p_values)


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """BH step-up adjusted p-values: p̃_(i) = min_{j ≥ i} min(1, m·p_(j) / j), in the input order.

    The same numbers as scipy.stats.false_discovery_control(method="bh"), which SciPy < 1.11 lacks.
    """
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    ranked = len(p) * p[order] / np.arange(1, len(p) + 1)
    steps = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, steps)
    return adjusted


def smallest_p(seeds: int, strata: int = 1) -> float:
    """The least exact p with `seeds` paired seeds in each of `strata` image pairs: 2^−strata·(seeds−1)."""
    return 0.5 ** (strata * (seeds - 1))


def min_seeds(pairs: int = 1, alpha: float = ALPHA, strata: int = 1) -> int:
    """The fewest seeds per image pair at which Holm over `pairs` pairs can reach p̃ < alpha (pairs·smallest_p)."""
    seeds = 2
    while pairs * smallest_p(seeds, strata) >= alpha:
        seeds += 1
    return seeds


# -- the effect and its interval ------------------------------------------------------------------
def effect_interval(block: np.ndarray, *, level: float = LEVEL, resamples: int = RESAMPLES,
                    method: str = "expanded", seed: int = 0) -> Interval:
    """T and its bootstrap interval over seeds (pairs kept together, repeated seeds' pairs skipped)."""
    return pooled_interval([block], level=level, resamples=resamples, method=method, seed=seed)


def pooled_interval(blocks: Sequence[np.ndarray], scales: Sequence[float] | None = None, *, level: float = LEVEL,
                    resamples: int = RESAMPLES, method: str = "expanded", seed: int = 0) -> Interval:
    """S = (1/K)·Σ_k T_k / scales_k and its bootstrap interval, seeds resampled within each block."""
    if not 0 < level < 1:
        raise GatysError(f"the confidence level must lie between 0 and 1, got {level}")
    if method not in METHODS:
        raise GatysError(f"unknown interval method {method!r}: choose one of {', '.join(METHODS)}")
    hs, weights = _strata(blocks, scales)
    rng = np.random.default_rng(seed)
    effect = sum(w * float(h[np.triu_indices(len(h), 1)].mean()) for h, w in zip(hs, weights))
    pooled = sum(w * _resampled(h, resamples, rng) for h, w in zip(hs, weights))
    tail = _tail(level, method, [len(h) for h in hs])
    low, high = np.quantile(pooled, [tail, 1 - tail])
    return Interval(effect, float(low), float(high), level, resamples, method)


def _resampled(h: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """T* = Σ_{s≠t} m_s m_t h_st / Σ_{s≠t} m_s m_t for multinomial seed counts m, drawn again where one seed was."""
    seeds, kept = len(h), np.zeros(0)
    while len(kept) < resamples:
        counts = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=resamples).astype(np.float64)
        pairs = seeds * seeds - np.square(counts).sum(axis=1)
        counts, pairs = counts[pairs > 0], pairs[pairs > 0]
        kept = np.concatenate([kept, ((counts @ h) * counts).sum(axis=1) / pairs])
    return kept[:resamples]


def _tail(level: float, method: str, seeds: list[int]) -> float:
    """The lower quantile to read: (1 − level)/2, or the expanded Φ(−√(n/(n−1))·t_df(1 − (1 − level)/2))."""
    tail = (1 - level) / 2
    if method == "percentile":
        return tail
    fewest, freedom = min(seeds), sum(count - 1 for count in seeds)
    return float(stats.norm.cdf(-math.sqrt(fewest / (fewest - 1)) * stats.t.ppf(1 - tail, freedom)))


# -- seeds needed ---------------------------------------------------------------------------------
def seeds_to_equivalence(interval: Interval, seeds: int, margin: float, limit: int = SEEDS_LIMIT) -> int | None:
    """The smallest n' > seeds whose interval, each end's distance from the effect × √(seeds/n'), fits the margin."""
    effect = interval.effect
    if abs(effect) >= margin:
        return None
    ratio = max((interval.high - effect) / (margin - effect), (effect - interval.low) / (margin + effect), 0.0)
    needed = max(seeds + 1, INTERVAL_SEEDS, math.floor(seeds * ratio**2) + 1)
    while needed <= limit and not _fits(interval, math.sqrt(seeds / needed), margin):  # rounding at the edge
        needed += 1
    return needed if needed <= limit else None


def _fits(interval: Interval, shrink: float, margin: float) -> bool:
    """Whether the interval, each end's distance from the effect × shrink, lies inside (−margin, margin)."""
    effect = interval.effect
    return -margin < effect - (effect - interval.low) * shrink and effect + (interval.high - effect) * shrink < margin


def seeds_to_difference(test: PermutationTest, seeds: int, pairs: int = 1, alpha: float = ALPHA, strata: int = 1,
                        limit: int = SEEDS_LIMIT) -> int | None:
    """The smallest n' > seeds, ≥ min_seeds, at which z = statistic/null_sd, grown by √(n'(n'−1)/(n(n−1))),
    reaches Φ⁻¹(1 − alpha/pairs); None when the statistic is ≤ 0 or n' would pass `limit`."""
    if test.statistic <= 0 or test.null_sd <= 0:
        return None
    growth = (stats.norm.ppf(1 - alpha / pairs) * test.null_sd / test.statistic) ** 2 * seeds * (seeds - 1)
    needed = max(seeds + 1, min_seeds(pairs, alpha, strata), math.ceil((1 + math.sqrt(1 + 4 * growth)) / 2))
    return needed if needed <= limit else None


# -- the verdicts ---------------------------------------------------------------------------------
def decide(a: str, b: str, test: PermutationTest, interval: Interval, corrected_p: float, seeds: Sequence[int],
           margin: float, *, alpha: float = ALPHA, pairs: int = 1, correction: str = "holm",
           pooled: bool = False) -> Verdict:
    """The rule: different (corrected p < alpha), else equivalent (the interval inside ±margin), else inconclusive.

    seeds: the paired finished seeds of each image pair (one number for a single study); pairs: the pairs of
    losses corrected over (m); pooled: the effect and the margin are in units of each image pair's margin.
    """
    _check_rule(margin, alpha)
    inside = -margin < interval.low and interval.high < margin
    ends = f"the {interval.level * 100:g} % CI {'lies inside' if inside else 'reaches past'} the margin ±{margin:.3g}"
    fewest, strata, name = min(seeds), len(seeds), CORRECTIONS[correction]
    extra: dict = {}
    if corrected_p < alpha:
        word, reason = "different", f"{name}-corrected p < {alpha:g}" + (f", though {ends}" if inside else "")
    elif inside and fewest >= INTERVAL_SEEDS:
        word, reason = "equivalent", ends
    else:
        word = "inconclusive"
        reason = (f"{name}-corrected p is not below {alpha:g}, and " +
                  (ends if not inside else f"{ends} but from fewer than {INTERVAL_SEEDS} seeds"))
        extra = {"seeds_to_equivalence": seeds_to_equivalence(interval, fewest, margin),
                 "seeds_to_difference": seeds_to_difference(test, fewest, pairs, alpha, strata)}
    return Verdict(a, b, word, sum(seeds), interval.effect, (interval.low, interval.high), interval.level, test.p,
                   float(corrected_p), test.smallest_p, margin, alpha, name, reason,
                   strata=strata, pooled=pooled, **extra)


def _check_rule(margin: float, alpha: float) -> None:
    if not (math.isfinite(margin) and margin > 0):
        raise GatysError(f"the equivalence margin must be a positive number, got {margin}")
    if not 0 < alpha < 1:
        raise GatysError(f"alpha must lie between 0 and 1, got {alpha}")


def _untestable(a: str, b: str, seeds: int, margin: float, alpha: float, level: float, correction: str,
                pooled: bool = False) -> Verdict:
    where = " in any image pair" if pooled else ""
    return Verdict(a, b, "inconclusive", seeds, None, None, level, None, None, None, margin, alpha,
                   CORRECTIONS[correction], f"not tested: needs at least 2 seeds that both losses finished{where}, "
                                            f"has {seeds}", strata=0 if pooled else 1, pooled=pooled)


def study_verdicts(distances: np.ndarray, outputs: Sequence[tuple[str, int]], margin: float, *,
                   losses: Sequence[str] | None = None, alpha: float = ALPHA, level: float = LEVEL,
                   correction: str = "holm", resamples: int = RESAMPLES, seed: int = 0) -> list[Verdict]:
    """One verdict per pair of losses of a study, corrected over all its pairs.

    distances: the style distances between all finished outputs; outputs[i] = (loss, seed) of row i;
    losses: the order of the pairs (default: the order of first appearance in outputs).
    """
    _check_rule(margin, alpha)
    rows = _rows(outputs)
    losses = list(losses) if losses is not None else list(rows)
    pairs = list(itertools.combinations(losses, 2))
    measured: dict[tuple[str, str], tuple[PermutationTest, Interval, int]] = {}
    for index, (a, b) in enumerate(pairs):
        block, seeds = pair_block(distances, rows.get(a, {}), rows.get(b, {}))
        if len(seeds) >= 2:
            measured[a, b] = (paired_test(block, seed=seed + index),
                              effect_interval(block, level=level, resamples=resamples, seed=seed + index), len(seeds))
    corrected = dict(zip(measured, adjust([test.p for test, _, _ in measured.values()], correction)))
    verdicts = []
    for a, b in pairs:
        if (a, b) not in measured:
            seeds = len(set(rows.get(a, {})) & set(rows.get(b, {})))
            verdicts.append(_untestable(a, b, seeds, margin, alpha, level, correction))
            continue
        test, interval, seeds = measured[a, b]
        verdicts.append(decide(a, b, test, interval, corrected[a, b], [seeds], margin, alpha=alpha,
                               pairs=len(measured), correction=correction))
    return verdicts


def pooled_verdicts(distances: Sequence[np.ndarray], outputs: Sequence[Sequence[tuple[str, int]]],
                    margins: Sequence[float], *, losses: Sequence[str] | None = None, alpha: float = ALPHA,
                    level: float = LEVEL, correction: str = "holm", resamples: int = RESAMPLES,
                    seed: int = 0) -> list[PooledVerdict]:
    """One verdict per pair of losses pooled over image pairs (one study each: its distances, outputs, margin).

    An image pair where a pair of losses has fewer than 2 paired seeds is left out of that pair's pooled test.
    """
    if not (len(distances) == len(outputs) == len(margins)) or not distances:
        raise GatysError(f"need one distance matrix, output list and margin per image pair, got {len(distances)}, "
                         f"{len(outputs)} and {len(margins)}")
    rows = [_rows(study) for study in outputs]
    losses = list(losses) if losses is not None else list(dict.fromkeys(loss for study in rows for loss in study))
    pairs = list(itertools.combinations(losses, 2))
    own = [{(v.a, v.b): v for v in study_verdicts(matrix, study, margin, losses=losses, alpha=alpha, level=level,
                                                   correction=correction, resamples=resamples, seed=seed)}
           for matrix, study, margin in zip(distances, outputs, margins)]
    measured = {}
    for index, (a, b) in enumerate(pairs):
        cut = [(pair_block(matrix, study.get(a, {}), study.get(b, {})), margin)
               for matrix, study, margin in zip(distances, rows, margins)]
        kept = [(block, len(seeds), margin) for (block, seeds), margin in cut if len(seeds) >= 2]
        if kept:
            blocks, seeds, scales = zip(*kept)
            measured[a, b] = (stratified_test(blocks, scales, seed=seed + index),
                              pooled_interval(blocks, scales, level=level, resamples=resamples, seed=seed + index),
                              list(seeds))
    corrected = dict(zip(measured, adjust([test.p for test, _, _ in measured.values()], correction)))
    verdicts = []
    for a, b in pairs:
        strata = tuple(study[a, b] for study in own)
        if (a, b) in measured:
            test, interval, seeds = measured[a, b]
            pooled = decide(a, b, test, interval, corrected[a, b], seeds, 1.0, alpha=alpha, pairs=len(measured),
                            correction=correction, pooled=True)
        else:
            pooled = _untestable(a, b, 0, 1.0, alpha, level, correction, pooled=True)
        verdicts.append(PooledVerdict(pooled, strata, sum(v.word == pooled.word for v in strata)))
    return verdicts


def _rows(outputs: Sequence[tuple[str, int]]) -> dict[str, dict[int, int]]:
    """loss → seed → row, from the (loss, seed) of each row of a distance matrix."""
    rows: dict[str, dict[int, int]] = {}
    for row, (loss, seed) in enumerate(outputs):
        if seed in rows.setdefault(loss, {}):
            raise GatysError(f"{loss} seed {seed} appears twice among the outputs")
        rows[loss][seed] = row
    return rows
