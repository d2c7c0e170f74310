"""Maximum-mean-discrepancy style losses (Li et al., "Demystifying Neural Style Transfer").

Every position's feature vector is a sample; the output's samples f and the style's s are
compared through a kernel k:

    MMD²_b = mean k(f, f') + mean k(s, s') − 2·mean k(f, s)

  mmd-poly      k = (xᵀy + c)^d       1/(4N²)·MMD²_b   (c = 0, d = 2 is `gram` exactly)
  mmd-linear    k = xᵀy               1/N·MMD²_b = ‖μ_F − μ_S‖²/N
  mmd-gaussian  k = exp(−‖x−y‖²/2σ²)  1/N·MMD²         (biased, unbiased or linear-time)

The normalisations are Li et al.'s reference code's (losses-spec.md §2.2): 1/N for the
linear and Gaussian kernels; for the polynomial kernel their 1/N² times ¼, so that it equals
Gatys's E_l. Kernel sums over all pairs are exact and tiled (`functional.kernel_sum`), so
no M×M matrix is held, in the forward or the backward pass.

With position weights w (masks) every mean over samples is the weighted one, a = w/Σw: the
mean embeddings become Σ_i a_i k(x_i, ·), so MMD²_b = Σ a_i a_j k(f_i, f_j) + Σ b_i b_j k(s_i, s_j)
− 2 Σ a_i b_j k(f_i, s_j) (`functional.kernel_mmd`). Positions of weight 0 are dropped before
the kernel sums and before any random choice, so a 0/1 mask gives exactly the loss of the
positions it selects, with the same random subsets and pairings as those positions alone.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from .base import StyleLoss, TensorCache
from .functional import (
    position_means,
    position_sums,
    TILE,
    GaussianKernel,
    PolynomialKernel,
    channel_means,
    column_mean,
    column_raw_moment,
    gram_matrix,
    kernel_mmd,
    kernel_self_term,
    mean_squared_distance,
    position_rows,
    positive_samples,
    random_indices,
    sample_weights,
    style_positions,
    style_weights,
)
from .registry import register


class MomentTarget(NamedTuple):
    raw_moment: torch.Tensor  # Ĝ_S = S Sᵀ/M, (C, C)
    mean: torch.Tensor  # μ_S, (C,)


class KernelTarget(NamedTuple):
    positions: torch.Tensor  # the style's samples as rows, (n, C)
    self_term: torch.Tensor  # the style-only term of MMD², a constant
    gammas: torch.Tensor | None = None  # Gaussian kernel bandwidths 1/(2σ²)
    weights: torch.Tensor | None = None  # the samples' weights, (n,) summing to one; None: uniform


def _samples(loss: StyleLoss, cache: TensorCache, feats: torch.Tensor, weights: torch.Tensor | None,
             least: int = 1) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Per batch item, its positions as rows (M, C) and their weights a (summing to one), or, with
    position weights, only the rows of positive weight (their indices cached per weights tensor)."""
    rows = position_rows(feats)
    if loss.checked_weights(weights, feats) is None:
        return [(item, None) for item in rows]
    per_item = sample_weights(weights, feats)
    samples = []
    for item, item_rows in enumerate(rows):
        row = min(item, len(weights) - 1)
        kept, shares = cache.get(weights, (row, per_item.dtype, per_item.device),
                                 lambda: _at_least(positive_samples(per_item[row]), least, loss))
        samples.append((item_rows[kept], shares))
    return samples


def _at_least(samples: tuple[torch.Tensor, torch.Tensor], least: int, loss: StyleLoss):
    """samples, unless fewer than `least` positions have a positive weight (ValueError)."""
    if len(samples[0]) < least:
        raise ValueError(f"{loss.name} with estimator={getattr(loss, 'estimator', 'biased')} needs at least "
                         f"{least} positions of positive weight, got {len(samples[0])}")
    return samples


@register("mmd-poly")
class PolynomialMMDLoss(StyleLoss):
    """Polynomial-kernel MMD: 1/(4N²)·MMD²_b with k(x, y) = (xᵀy + c)^d (c = 0, d = 2 is `gram`).

    d = 2 uses the Gram identity MMD²_b = ‖Ĝ_F − Ĝ_S‖²_F + 2c·‖μ_F − μ_S‖² (the c² terms
    cancel), which costs O(M·N²); any other d sums the kernel exactly over all pairs, in tiles.
    Weighted: d = 2 with the weighted Ĝ and μ (the identity holds for them), other d with the
    weighted kernel sums Σ a_i b_j k(x_i, y_j), a = w/Σw.
    """

    default_weight = 5e2  # benchmarks/calibrate_weights.py
    position_weights = True

    def __init__(self, c: float = 0.0, d: int = 2, weight: float | None = None,
                 layers: Sequence[str] | str | None = None):
        super().__init__(weight, layers)
        if isinstance(d, bool) or not isinstance(d, (int, float)) or d != int(d) or d < 1:
            raise ValueError(f"d must be a positive integer, not {d!r}")
        self.c = float(c)
        self.d = int(d)
        self.kernel = PolynomialKernel(self.c, self.d)
        self.tile = TILE
        self._kept = TensorCache()

    def target(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> MomentTarget | KernelTarget:
        positions = style_positions(feats)
        if self.checked_weights(weights, feats, pooled=True) is not None:
            if self.d == 2:
                column_weights = style_weights(weights, feats)
                return MomentTarget(column_raw_moment(positions, column_weights),
                                    column_mean(positions, column_weights))
            kept, shares = positive_samples(style_weights(weights, feats))
            rows = positions.T[kept].contiguous()
            return KernelTarget(rows, kernel_self_term(rows, self.kernel, "biased", self.tile, shares), None, shares)
        if self.d == 2:
            return MomentTarget(positions @ positions.T / positions.shape[1], positions.mean(dim=1))
        rows = positions.T.contiguous()
        return KernelTarget(rows, kernel_self_term(rows, self.kernel, "biased", self.tile))

    def forward(self, feats: torch.Tensor, target: MomentTarget | KernelTarget,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        channels = feats.shape[1]
        if self.d == 2:
            weights = self.checked_weights(weights, feats)
            value = (gram_matrix(feats, weights) - target.raw_moment).square().sum()
            if self.c:
                value = value + 2 * self.c * (channel_means(feats, weights) - target.mean).square().sum()
        else:
            value = sum(kernel_mmd(rows, target.positions, self.kernel, "biased", self.tile, target.self_term,
                                   x_weights=shares, y_weights=target.weights)
                        for rows, shares in _samples(self, self._kept, feats, weights))
        return value / (4 * channels**2)

    @property
    def tileable(self) -> bool:
        """d = 2 only: the Gram identity makes it a function of Ĝ and μ; other degrees sum over all pairs."""
        return self.d == 2

    def statistics(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self.d != 2:
            return super().statistics(feats, weights)
        return position_sums(feats, weights, first=bool(self.c), second="outer")

    def value_from(self, statistics: dict[str, torch.Tensor], target: MomentTarget) -> torch.Tensor:
        if self.d != 2:
            return super().value_from(statistics, target)
        means = position_means(statistics)
        value = (means["second"] - target.raw_moment).square().sum()
        if self.c:
            value = value + 2 * self.c * (means["first"] - target.mean).square().sum()
        return value / (4 * means["second"].shape[-1] ** 2)

    def extra_repr(self) -> str:
        return f"c={self.c:g}, d={self.d}, {super().extra_repr()}"


@register("mmd-linear")
class LinearMMDLoss(StyleLoss):
    """Linear-kernel MMD: 1/N·‖μ_F − μ_S‖² (= MMD²_b with k(x, y) = xᵀy): the channel means only.

    Weighted: μ = Σ_p w_p f_p / Σ_p w_p on each side.
    """

    default_weight = 1.2e2  # benchmarks/calibrate_weights.py
    position_weights = True
    tileable = True

    def target(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        if self.checked_weights(weights, feats, pooled=True) is not None:
            return column_mean(style_positions(feats), style_weights(weights, feats))
        return style_positions(feats).mean(dim=1)

    def forward(self, feats: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return (channel_means(feats, self.checked_weights(weights, feats)) - target).square().sum() / feats.shape[1]

    def statistics(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return position_sums(feats, weights)

    def value_from(self, statistics: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        mean = position_means(statistics)["first"]
        return (mean - target).square().sum() / mean.shape[1]


@register("mmd-gaussian")
class GaussianMMDLoss(StyleLoss):
    """Gaussian-kernel MMD: 1/N·MMD² with k(x, y) = exp(−‖x − y‖²/(2σ²)), 2σ² = mean ‖s − s'‖² by default.

    sigma      "auto": 2σ² = the mean squared distance between style positions (= 2·tr Σ_S,
               in closed form; taken from the style alone so it is a constant of the target,
               which is not Li et al.'s rule); "li2017" (their rule): 2σ² = the mean squared distance over the
               4P pairs the linear-time estimator compares (xx', yy', xy', x'y), the output's
               and the style's, recomputed at every evaluation and held constant in the
               backward pass, as Li et al.'s reference code does (estimator=linear only);
               or a number; or a list (sigma=1+2+4, "auto" allowed in it), which sums one
               kernel per σ.
    estimator  "biased" (V-statistic, exact over all pairs), "unbiased" (U-statistic) or
               "linear" (Gretton's linear-time estimator over ⌊M/2⌋ random disjoint quadruples;
               unbiased, O(M), but random).
    samples    use that many random positions of the output and of the style (all if None).
    seed       fixes every random choice: the output's subset and pairing stay fixed until
               resample(); the style's subset (and pairing) is drawn when the target is made.
    Normalisation 1/N is Li et al.'s reference code's Z for this kernel (the paper's is unconfirmed).
    Weighted: positions of weight 0 are dropped, then the random choice is made among the rest;
    biased/unbiased use the weighted kernel sums with a = w/Σw over the chosen rows, linear the
    mean of h_p weighted by ω_p = w(x_2p)·w(x_2p+1)·w(y_2p)·w(y_2p+1); "auto" takes the weighted
    mean squared distance (2·weighted tr Σ_S), li2017 the pairs among the kept rows.
    """

    default_weight = 5.5e4  # benchmarks/calibrate_weights.py
    position_weights = True

    estimators = ("biased", "unbiased", "linear")

    def __init__(self, sigma: float | str | Sequence[float | str] = "auto", estimator: str = "biased",
                 samples: int | None = None, seed: int = 0, weight: float | None = None,
                 layers: Sequence[str] | str | None = None):
        super().__init__(weight, layers)
        self.sigmas = tuple(sigma) if isinstance(sigma, (list, tuple)) else (sigma,)
        if estimator not in self.estimators:
            raise ValueError(f"estimator must be one of {', '.join(self.estimators)}, not {estimator!r}")
        self.pair_bandwidth = sigma == "li2017"
        if self.pair_bandwidth and estimator != "linear":
            raise ValueError("sigma=li2017 is the bandwidth of the linear-time estimator's pairs: "
                             "use it with estimator=linear")
        for value in () if self.pair_bandwidth else self.sigmas:
            if value != "auto" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ValueError(f"sigma must be 'auto', 'li2017', a positive number or a list of these, "
                                 f"not {sigma!r}")
        if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 2):
            raise ValueError(f"samples must be an integer ≥ 2 or none, not {samples!r}")
        self.estimator = estimator
        self.samples = samples
        self.seed = int(seed)
        self.tile = TILE
        self._indices: dict[tuple, torch.Tensor] = {}
        self._kept = TensorCache()

    def resample(self, generator: torch.Generator) -> None:
        self.seed = int(torch.randint(0, 2**62, (), generator=generator))
        self._indices.clear()

    def _picked(self, rows: torch.Tensor, stream: int,
                weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(rows, weights), or the fixed random subset (or order, for the linear estimator) that the
        estimator uses, with its weights renormalised to sum to one."""
        total = rows.shape[0]
        if self.estimator != "linear" and (self.samples is None or self.samples >= total):
            return rows, weights
        key = (total, stream, rows.device)
        if key not in self._indices:
            self._indices[key] = random_indices(total, self.samples, 2 * self.seed + stream).to(rows.device)
        index = self._indices[key]
        if weights is None:
            return rows[index], None
        chosen = weights[index]
        return rows[index], chosen / chosen.sum()

    def target(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> KernelTarget:
        positions = style_positions(feats)
        if self.checked_weights(weights, feats, pooled=True) is None:
            column_weights = None
            rows, shares = self._picked(positions.T.contiguous(), stream=1)
        else:
            column_weights = style_weights(weights, feats)
            kept, shares = _at_least(positive_samples(column_weights), self._least, self)
            rows, shares = self._picked(positions.T[kept].contiguous(), stream=1, weights=shares)
        if self.pair_bandwidth:
            return KernelTarget(rows, rows.new_zeros(()), None, shares)  # the bandwidth comes with the output's pairs
        scale = mean_squared_distance(positions, column_weights)  # a constant of the style
        scale = scale.clamp_min(torch.finfo(positions.dtype).eps)
        gammas = torch.stack([1 / scale if sigma == "auto" else scale.new_tensor(0.5 / sigma**2)
                              for sigma in self.sigmas])
        if self.estimator == "linear":
            self_term = rows.new_zeros(())
        else:
            self_term = kernel_self_term(rows, GaussianKernel(gammas), self.estimator, self.tile, shares)
        return KernelTarget(rows, self_term, gammas, shares)

    @property
    def _least(self) -> int:
        """The fewest positions of positive weight the estimator is defined for."""
        return 1 if self.estimator == "biased" else 2

    def forward(self, feats: torch.Tensor, target: KernelTarget, weights: torch.Tensor | None = None) -> torch.Tensor:
        value = 0
        for rows, shares in _samples(self, self._kept, feats, weights, self._least):
            picked, shares = self._picked(rows, stream=0, weights=shares)
            gammas = pair_bandwidth(picked, target.positions) if self.pair_bandwidth else target.gammas
            value = value + kernel_mmd(picked, target.positions, GaussianKernel(gammas), self.estimator,
                                       self.tile, target.self_term, x_weights=shares, y_weights=target.weights)
        return value / feats.shape[1]

    def extra_repr(self) -> str:
        sigma = "+".join(map(str, self.sigmas))
        return (f"sigma={sigma}, estimator={self.estimator}, samples={self.samples}, seed={self.seed}, "
                f"{super().extra_repr()}")


def pair_bandwidth(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """γ = 1/(2σ²) = 1/mean d² over the linear-time estimator's 4P pairs, detached: shape (1,).

    The pairs are those `kernel_mmd(..., "linear")` compares, in row order: (x_2p, x_2p+1),
    (y_2p, y_2p+1), (x_2p, y_2p+1) and (x_2p+1, y_2p), for P = ⌊min(m, n)/2⌋ quadruples
    (Li et al.'s `mmd_loss.py`: gamma = 2·n0 / Σ d², n0 = 2P).
    """
    pairs = min(x.shape[0], y.shape[0]) // 2
    x, y = x.detach(), y.detach()
    x0, x1 = x[0 : 2 * pairs : 2], x[1 : 2 * pairs : 2]
    y0, y1 = y[0 : 2 * pairs : 2], y[1 : 2 * pairs : 2]
    total = sum((a - b).square().sum() for a, b in ((x0, x1), (y0, y1), (x0, y1), (x1, y0)))
    mean = (total / (4 * pairs)).clamp_min(torch.finfo(x.dtype).eps)
    return (1 / mean).reshape(1)
