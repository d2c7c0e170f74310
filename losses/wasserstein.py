"""Wasserstein style losses: between Gaussian fits (Crowson) and sliced, between the samples (Heitz et al.).

    w2                  1/N·[‖μ_F − μ_S‖² + tr(Σ_F + Σ_S − 2(Σ_S^½ Σ_F Σ_S^½)^½)]
    sliced-wasserstein  mean over P directions v of mean_k (sort(vᵀF)_k − sort(vᵀS)_k)²

With position weights (masks) w2 fits the weighted mean and covariance, and the sliced loss
compares weighted empirical quantile functions.

The N×N matrix functions of w2 run in float64 (on the CPU for MPS tensors, which have no
float64): Σ spans several orders of magnitude at VGG scale and the trace term is a
difference of nearly equal numbers. They cost O(N³), nothing next to the network.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from .base import StyleLoss, TensorCache
from .functional import (
    position_means,
    position_sums,
    channel_means,
    column_mean,
    column_raw_moment,
    gaussian_w2,
    gram_matrix,
    position_columns,
    positive_samples,
    quantile_function,
    random_directions,
    resample_quantiles,
    sample_weights,
    sliced_wasserstein,
    sorted_projections,
    sqrtm_psd,
    style_positions,
    style_weights,
    uniform_midpoints,
    weighted_sliced_wasserstein,
    weighted_sorted_projections,
)
from .registry import register


class W2Target(NamedTuple):
    mean: torch.Tensor  # μ_S, (C,)
    raw_moment: torch.Tensor  # Ĝ_S = S Sᵀ/M, (C, C): with μ_S, what blends linearly
    cov_sqrt: torch.Tensor  # Σ_S^½ in float64, (C, C)
    cov_trace: torch.Tensor  # tr Σ_S in float64


def _float64(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to("cpu" if tensor.device.type == "mps" else tensor.device, torch.float64)


@register("w2")
class W2Loss(StyleLoss):
    """Gaussian W2²: 1/N·[‖μ_F − μ_S‖² + tr(Σ_F + Σ_S − 2(Σ_S^½ Σ_F Σ_S^½)^½)], eps·I added to each Σ.

    Σ is the biased covariance Ĝ − μμᵀ plus eps·I (Crowson's 1e-4). The square root of the
    target's Σ is computed once by eigh; tr((Σ_S^½ Σ_F Σ_S^½)^½) is Σ√λ from eigvalsh, whose
    gradient stays finite for repeated eigenvalues and is bounded by the eps floor.
    Several styles blend as the mixture's (μ, Ĝ), weights normalised to sum to one.
    Weighted: μ = Σ w f / Σ w and Ĝ = Σ w f fᵀ / Σ w, so Σ is the position-weighted covariance.
    """

    default_weight = 33.0  # benchmarks/calibrate_weights.py
    capturable = False  # on CUDA, eigvalsh checks its result on the host
    position_weights = True
    tileable = True

    def __init__(self, eps: float = 1e-4, weight: float | None = None, layers: Sequence[str] | str | None = None):
        super().__init__(weight, layers)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
            raise ValueError(f"eps must be a number ≥ 0, not {eps!r}")
        self.eps = float(eps)

    def _covariance(self, mean: torch.Tensor, raw_moment: torch.Tensor) -> torch.Tensor:
        """Σ = Ĝ − μμᵀ + eps·I in float64 (batched or not)."""
        mean, raw_moment = _float64(mean), _float64(raw_moment)
        identity = torch.eye(raw_moment.shape[-1], dtype=torch.float64, device=raw_moment.device)
        return raw_moment - mean.unsqueeze(-1) * mean.unsqueeze(-2) + self.eps * identity

    def _target(self, mean: torch.Tensor, raw_moment: torch.Tensor) -> W2Target:
        cov = self._covariance(mean, raw_moment)
        return W2Target(mean, raw_moment, sqrtm_psd(cov), cov.diagonal().sum())

    def target(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> W2Target:
        positions = style_positions(feats)
        if self.checked_weights(weights, feats, pooled=True) is not None:
            column_weights = style_weights(weights, feats)
            return self._target(column_mean(positions, column_weights), column_raw_moment(positions, column_weights))
        return self._target(positions.mean(dim=1), positions @ positions.T / positions.shape[1])

    def forward(self, feats: torch.Tensor, target: W2Target, weights: torch.Tensor | None = None) -> torch.Tensor:
        weights = self.checked_weights(weights, feats)
        mean = channel_means(feats, weights)
        cov = self._covariance(mean, gram_matrix(feats, weights))
        floor = self.eps**2 if self.eps > 0 else torch.finfo(torch.float64).tiny
        value = gaussian_w2(_float64(mean), cov, _float64(target.mean), target.cov_sqrt, target.cov_trace, floor)
        return value.sum().to(mean.device, mean.dtype) / feats.shape[1]

    def statistics(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return position_sums(feats, weights, second="outer")

    def value_from(self, statistics: dict[str, torch.Tensor], target: W2Target) -> torch.Tensor:
        means = position_means(statistics)
        mean = means["first"]
        cov = self._covariance(mean, means["second"])
        floor = self.eps**2 if self.eps > 0 else torch.finfo(torch.float64).tiny
        value = gaussian_w2(_float64(mean), cov, _float64(target.mean), target.cov_sqrt, target.cov_trace, floor)
        return value.sum().to(mean.device, mean.dtype) / mean.shape[1]

    def blend(self, targets: Sequence[W2Target], weights: Sequence[float]) -> W2Target:
        total = sum(weights)
        mean = sum(w / total * t.mean for w, t in zip(weights, targets))
        raw_moment = sum(w / total * t.raw_moment for w, t in zip(weights, targets))
        return self._target(mean, raw_moment)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, {super().extra_repr()}"


class SlicedTarget(NamedTuple):
    positions: torch.Tensor  # the style's samples as columns, (C, n): with weights, those of positive weight
    weights: torch.Tensor | None = None  # their weights, summing to one; None: uniform


@register("sliced-wasserstein", aliases=("swd",))
class SlicedWassersteinLoss(StyleLoss):
    """Sliced W2²: mean over P random unit directions v of mean_k (sort(vᵀF)_k − sort(vᵀS)_k)².

    projections  P, the number of directions; None: as many as channels (Heitz et al.'s code).
    seed         fixes the directions, so every evaluation sees one objective (L-BFGS needs
                 that); resample() draws new ones (Heitz et al. redraw at every evaluation).
    When M_S ≠ M_F the style's sorted projections are read at the output's quantiles
    (k + ½)/M_F by linear interpolation. The style's sorted projections are cached per
    target until the directions change, so a forward sorts only the output.
    Weighted (positions of weight 0 dropped, a = w/Σw): mean over v of Σ_p a_p (sort(vᵀF)_p − Q_S(u_p))²,
    u_p = C_p − a_p/2 the sorted samples' mid-points (C the cumulative sum), Q_S the style's quantile
    function interpolated linearly between its samples' mid-points ((j + ½)/M_S unweighted).
    """

    default_weight = 66.0  # benchmarks/calibrate_weights.py
    position_weights = True

    def __init__(self, projections: int | None = None, seed: int = 0, weight: float | None = None,
                 layers: Sequence[str] | str | None = None):
        super().__init__(weight, layers)
        if projections is not None and (isinstance(projections, bool) or not isinstance(projections, int)
                                        or projections < 1):
            raise ValueError(f"projections must be a positive integer or none, not {projections!r}")
        self.projections = projections
        self.seed = int(seed)
        self._directions: dict[tuple, torch.Tensor] = {}
        self._quantiles: dict[tuple, tuple[SlicedTarget, object]] = {}
        self._kept = TensorCache()

    def resample(self, generator: torch.Generator) -> None:
        self.seed = int(torch.randint(0, 2**62, (), generator=generator))
        self._directions.clear()
        self._quantiles.clear()

    def directions(self, channels: int, like: torch.Tensor) -> torch.Tensor:
        """The current (P, channels) unit directions, on like's device and dtype."""
        key = (channels, like.device, like.dtype)
        if key not in self._directions:
            count = self.projections or channels
            self._directions[key] = random_directions(count, channels, self.seed).to(like.device, like.dtype)
        return self._directions[key]

    def target(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> SlicedTarget:
        positions = style_positions(feats)
        if self.checked_weights(weights, feats, pooled=True) is None:
            return SlicedTarget(positions)
        kept, shares = positive_samples(style_weights(weights, feats))
        return SlicedTarget(positions[:, kept], shares)

    def _cached(self, target: SlicedTarget, count: int | None, directions: torch.Tensor, compute):
        key = (id(target), count, directions.dtype)
        cached = self._quantiles.get(key)
        if cached is None or cached[0] is not target:  # holding the target keeps its id unique
            if len(self._quantiles) >= 64:
                self._quantiles.clear()
            with torch.no_grad():
                cached = self._quantiles[key] = (target, compute())
        return cached[1]

    def _target_quantiles(self, target: SlicedTarget, directions: torch.Tensor, count: int) -> torch.Tensor:
        """The style's quantile function at (k + ½)/count, per direction: (P, count)."""
        def compute():
            if target.weights is None:
                return resample_quantiles(sorted_projections(target.positions.to(directions.dtype), directions), count)
            values, points = self._target_function(target, directions)
            return quantile_function(values, points, uniform_midpoints(count, points).expand(len(values), -1))

        return self._cached(target, count, directions, compute)

    def _target_function(self, target: SlicedTarget, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The style's sorted projections and their mid-points, per direction: two (P, n)."""
        def compute():
            positions = target.positions.to(directions.dtype)
            if target.weights is None:
                values = sorted_projections(positions, directions)
                return values, uniform_midpoints(values.shape[-1], values).expand_as(values).contiguous()
            return weighted_sorted_projections(positions, target.weights.to(directions.dtype), directions)

        return self._cached(target, None, directions, compute)

    def forward(self, feats: torch.Tensor, target: SlicedTarget, weights: torch.Tensor | None = None) -> torch.Tensor:
        positions = position_columns(feats)
        directions = self.directions(positions.shape[1], positions)
        if self.checked_weights(weights, feats) is None:
            quantiles = self._target_quantiles(target, directions, positions.shape[2])
            return sliced_wasserstein(positions, quantiles, directions).sum()
        values, points = self._target_function(target, directions)
        per_item = sample_weights(weights, feats)
        total = 0
        for item, columns in enumerate(positions):
            row = min(item, len(weights) - 1)
            kept, shares = self._kept.get(weights, (row, per_item.dtype, per_item.device),
                                          lambda: positive_samples(per_item[row]))
            total = total + weighted_sliced_wasserstein(columns[:, kept], shares, values, points, directions)
        return total

    def extra_repr(self) -> str:
        return f"projections={self.projections}, seed={self.seed}, {super().extra_repr()}"
