"""The Gram-matrix style loss of Gatys et al.

    L = 1/(4N²) · ‖Ĝ_F − Ĝ_S‖²_F,   Ĝ = F Fᵀ / M

With M_F = M_S = M this is Gatys's E_l = 1/(4N²M²)·Σ(G − A)², and by Li et al.'s
identity it equals 1/(4N²)·MMD²_b with the kernel k(x, y) = (xᵀy)². Ĝ is averaged
over positions, so the style and the output may have different sizes.
"""
from __future__ import annotations

import torch

from .base import StyleLoss
from .functional import gram_matrix, style_positions
from .registry import register


@register("gram")
class GramLoss(StyleLoss):
    """Gatys et al.'s Gram-matrix loss: 1/(4N²)·‖Ĝ_F − Ĝ_S‖²_F (= quadratic-kernel MMD²/(4N²))."""

    default_weight = 5e2

    def target(self, feats: torch.Tensor) -> torch.Tensor:
        positions = style_positions(feats)
        return positions @ positions.T / positions.shape[1]

    def forward(self, feats: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _loss(gram_matrix(feats), target)

    def scaled(self, feats: torch.Tensor, scale: float, target: torch.Tensor) -> torch.Tensor:
        return _loss(gram_matrix(feats) * (1.0 / scale**2), target)


def _loss(gram: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    channels = gram.shape[-1]
    return (gram - target).square().sum() / (4 * channels**2)
