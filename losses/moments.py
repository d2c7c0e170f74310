"""The BN-statistics (moment-matching) style loss of Li et al.

    L = 1/N·Σ_i [(μ_i^F − μ_i^S)² + (σ_i^F − σ_i^S)²],   σ_i = sqrt(biased variance + eps)

Li et al.'s reference code (`bn_loss.py`) has no eps; here a small one (1e-5, the instance-norm
convention) keeps the gradient of σ finite where a channel is constant, which dead ReLU
channels are. At the scale of VGG features (σ of order 1 after the engine's layer normalisation,
tens in raw Caffe features) it changes nothing measurable.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from .base import StyleLoss
from .functional import channel_moments, style_positions
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
    """

    default_weight = 43.0  # benchmarks/calibrate_weights.py

    def __init__(self, eps: float = 1e-5, weight: float | None = None, layers: Sequence[str] | str | None = None):
        super().__init__(weight, layers)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
            raise ValueError(f"eps must be a number ≥ 0, not {eps!r}")
        self.eps = float(eps)

    def target(self, feats: torch.Tensor) -> MomentsTarget:
        positions = style_positions(feats)
        variance = positions.var(dim=1, unbiased=False)
        return MomentsTarget(positions.mean(dim=1), torch.sqrt(variance + self.eps))

    def forward(self, feats: torch.Tensor, target: MomentsTarget) -> torch.Tensor:
        mean, std = channel_moments(feats, self.eps)
        return ((mean - target.mean).square() + (std - target.std).square()).sum() / feats.shape[1]

    def blend(self, targets: Sequence[MomentsTarget], weights: Sequence[float]) -> MomentsTarget:
        """The mixture's moments; the weights are normalised to sum to one."""
        total = sum(weights)
        mean = sum(w / total * t.mean for w, t in zip(weights, targets))
        second = sum(w / total * (t.std.square() - self.eps + t.mean.square()) for w, t in zip(weights, targets))
        return MomentsTarget(mean, torch.sqrt((second - mean.square()).clamp_min(0) + self.eps))

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, {super().extra_repr()}"
