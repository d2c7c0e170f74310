"""The Gram-matrix style loss of Gatys et al.

    L = 1/(4N²) · ‖Ĝ_F − Ĝ_S‖²_F,   Ĝ = F Fᵀ / M

With M_F = M_S = M this is Gatys's E_l = 1/(4N²M²)·Σ(G − A)², and by Li et al.'s
identity it equals 1/(4N²)·MMD²_b with the kernel k(x, y) = (xᵀy)². Ĝ is averaged
over positions, so the style and the output may have different sizes.

With position weights w (masks) Ĝ is the weighted Gram Σ_p w_p f_p f_pᵀ / Σ_p w_p, for the
output and the style alike; for a 0/1 guide this is Gatys et al.'s guided Gram normalised by
the guide's area (docs/losses.md, "Position weights").
"""
from __future__ import annotations

import torch

from .base import StyleLoss
from .functional import position_means, position_sums, column_raw_moment, gram_matrix, style_positions, style_weights
from .registry import register


@register("gram")
class GramLoss(StyleLoss):
    """Gatys et al.'s Gram-matrix loss: 1/(4N²)·‖Ĝ_F − Ĝ_S‖²_F (= quadratic-kernel MMD²/(4N²)).

    Weighted: Ĝ = Σ_p w_p f_p f_pᵀ / Σ_p w_p on each side (exactly the unweighted Ĝ for w = 1).
    """

    default_weight = 5e2
    position_weights = True
    tileable = True  # Ĝ = Σ_p f_p f_pᵀ / Σ_p w_p: sums over tiles

    def target(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        positions = style_positions(feats)
        if self.checked_weights(weights, feats, pooled=True) is None:
            return positions @ positions.T / positions.shape[1]
        return column_raw_moment(positions, style_weights(weights, feats))

    def forward(self, feats: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return _loss(gram_matrix(feats, self.checked_weights(weights, feats)), target)

    def scaled(self, feats: torch.Tensor, scale: float, target: torch.Tensor,
               weights: torch.Tensor | None = None) -> torch.Tensor:
        return _loss(gram_matrix(feats, self.checked_weights(weights, feats)) * (1.0 / scale**2), target)

    def statistics(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return position_sums(feats, weights, first=False, second="outer")

    def value_from(self, statistics: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        return _loss(position_means(statistics)["second"], target)


def _loss(gram: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    channels = gram.shape[-1]
    return (gram - target).square().sum() / (4 * channels**2)
