"""The BN-statistics (moment-matching) style loss of Li et al.

    L = 1/N·Σ_i [(μ_i^F − μ_i^S)² + (σ_i^F − σ_i^S)²],   σ_i = sqrt(biased variance + eps)

Li et al.'s reference code (`bn_loss.py`) has no eps; here a small one (1e-5, the instance-norm
convention) keeps the gradient of σ finite where a channel is constant, which dead ReLU
channels are. At the scale of VGG features (σ of order 1 after the engine's layer normalisation,
tens in raw Caffe features) it changes nothing measurable.

With position weights w: μ = Σ_p w_p f_p / Σ_p w_p and the variance Σ_p w_p (f_p − μ)² / Σ_p w_p.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from .base import StyleLoss
from .functional import position_means, position_sums, channel_moments, column_mean, column_variance, style_positions, style_weights
from .registry import register


class MomentsTarget(NamedTuple):
    mean: torch.Tensor  # μ_S, (C,)
    std: torch.Tensor  # σ_S = sqrt(biased variance + eps), (C,)


@register("moments", aliases=("bn",))
class MomentsLoss(StyleLoss):
    """Channel mean and std matching (BN statistics): 1/N·Σᵢ[(μᵢ_F − μᵢ_S)² + (σᵢ_F − σᵢ_S)²].

    σ is the biased standard deviation with eps inside the square root, for output and style alike.
    Several styles blend into the moments of their mixture: μ = Σ w_k μ_k and
    E[x²] = Σ w_k E_k[x²], hence σ² = E[x²] − μ² (not the weighted sum of σ_k).
    Weighted: μ and the biased variance are the position-weighted ones, normalised by Σ_p w_p.
    """

    default_weight = 43.0  # benchmarks/calibrate_weights.py
    tileable = True
    position_weights = True

    def __init__(self, eps: float = 1e-5, weight: float | None = None, layers: Sequence[str] | str | None = None):
        super().__init__(weight, layers)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
            raise ValueError(f"eps must be a number ≥ 0, not {eps!r}")
        self.eps = float(eps)

    def target(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> MomentsTarget:
        positions = style_positions(feats)
        if self.checked_weights(weights, feats, pooled=True) is not None:
            column_weights = style_weights(weights, feats)
            variance = column_variance(positions, column_weights)
            return MomentsTarget(column_mean(positions, column_weights), torch.sqrt(variance + self.eps))
        variance = positions.var(dim=1, unbiased=False)
        return MomentsTarget(positions.mean(dim=1), torch.sqrt(variance + self.eps))

    def forward(self, feats: torch.Tensor, target: MomentsTarget, weights: torch.Tensor | None = None) -> torch.Tensor:
        mean, std = channel_moments(feats, self.eps, self.checked_weights(weights, feats))
        return ((mean - target.mean).square() + (std - target.std).square()).sum() / feats.shape[1]

    def statistics(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return position_sums(feats, weights, second="square")

    def value_from(self, statistics: dict[str, torch.Tensor], target: MomentsTarget) -> torch.Tensor:
        """From Σ w f and Σ w f²: σ² = E[f²] − μ² (clamped at 0), the one-pass form of the variance."""
        means = position_means(statistics)
        mean = means["first"]
        std = torch.sqrt((means["second"] - mean.square()).clamp_min(0) + self.eps)
        return ((mean - target.mean).square() + (std - target.std).square()).sum() / mean.shape[1]

    def blend(self, targets: Sequence[MomentsTarget], weights: Sequence[float]) -> MomentsTarget:
        """The mixture's moments; the weights are normalised to sum to one."""
        total = sum(weights)
        mean = sum(w / total * t.mean for w, t in zip(weights, targets))
        second = sum(w / total * (t.std.square() - self.eps + t.mean.square()) for w, t in zip(weights, targets))
        return MomentsTarget(mean, torch.sqrt((second - mean.square()).clamp_min(0) + self.eps))

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, {super().extra_repr()}"
