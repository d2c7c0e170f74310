"""The identities behind the study, measured on its own VGG features in float64.

    gram          1/(4N²)·‖Ĝ_F − Ĝ_S‖²  =  1/(4N²)·MMD²_b with k(x, y) = (xᵀy)²
    mmd-linear    ‖μ_F − μ_S‖²           =  MMD²_b with k(x, y) = xᵀy
    moments       the loss (eps = 0)     =  1/N·Σᵢ[(μᵢ_F − μᵢ_S)² + (σᵢ_F − σᵢ_S)²] in numpy

F is the content image's features and S the style's at each style layer, over a fixed subset
of at most IDENTITY_POSITIONS positions of each (the identities hold on any sample); the
kernel MMDs are summed over every pair of positions (the brute-force side), the other sides
are the registered losses' own formulas.
"""
from __future__ import annotations

import numpy as np
import torch

from losses.functional import PolynomialKernel, kernel_mmd
from losses.gram import GramLoss
from losses.mmd import LinearMMDLoss
from losses.moments import MomentsLoss

IDENTITY_POSITIONS = 2048
TOLERANCE = 1e-9


def _subset(feats: torch.Tensor, seed: int) -> torch.Tensor:
    """(1, C, H, W) → (1, C, 1, K) float64 over a fixed subset of positions."""
    columns = feats[0].flatten(1).double().cpu()
    if columns.shape[1] > IDENTITY_POSITIONS:
        order = torch.randperm(columns.shape[1], generator=torch.Generator().manual_seed(seed))
        columns = columns[:, order[:IDENTITY_POSITIONS]]
    return columns.unsqueeze(0).unsqueeze(2)


def _relative(measured: float, expected: float) -> float:
    scale = max(abs(measured), abs(expected))
    return abs(measured - expected) / scale if scale else 0.0


def check(content_feats: dict[str, torch.Tensor], style_feats: dict[str, torch.Tensor]) -> list[dict]:
    """One record per identity and layer: both sides, the relative error, and whether it is below TOLERANCE."""
    records = []
    for layer in content_feats:
        f, s = _subset(content_feats[layer], 1), _subset(style_feats[layer], 2)
        channels = f.shape[1]
        x, y = f[0, :, 0].T.contiguous(), s[0, :, 0].T.contiguous()  # positions as rows
        gram = GramLoss()
        linear = LinearMMDLoss()
        moments = MomentsLoss(eps=0.0)
        sides = {
            "gram = quadratic-kernel MMD²/(4N²)": (
                float(gram(f, gram.target(s))),
                float(kernel_mmd(x, y, PolynomialKernel(0.0, 2))) / (4 * channels**2)),
            "squared mean difference = linear-kernel MMD²": (
                float(linear(f, linear.target(s))) * channels,
                float(kernel_mmd(x, y, PolynomialKernel(0.0, 1)))),
            "moments = 1/N·Σ[(μ_F − μ_S)² + (σ_F − σ_S)²]": (
                float(moments(f, moments.target(s))),
                _moments_formula(x.numpy(), y.numpy())),
        }
        for identity, (loss_side, formula_side) in sides.items():
            error = _relative(loss_side, formula_side)
            records.append({"identity": identity, "layer": layer, "positions": [x.shape[0], y.shape[0]],
                            "loss": loss_side, "formula": formula_side, "relative_error": error,
                            "holds": error < TOLERANCE})
    return records


def _moments_formula(x: np.ndarray, y: np.ndarray) -> float:
    """1/N·Σᵢ[(μᵢ_x − μᵢ_y)² + (σᵢ_x − σᵢ_y)²] with biased σ, positions as rows."""
    return float(((x.mean(0) - y.mean(0)) ** 2 + (x.std(0) - y.std(0)) ** 2).sum() / x.shape[1])
