"""The content term: mean squared error between feature maps (not a registered style loss).

    L_content = mean((F − P)²) over channels and positions, summed over the batch

This is 2/(N·M) times Gatys's ½·Σ(F − P)², so its scale does not depend on image size.
"""
from __future__ import annotations

import torch

from .base import check_features


def content_loss(feats: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE per batch item, summed over the batch; float32 or wider."""
    check_features(feats)
    if feats.shape[1:] != target.shape[1:]:
        raise ValueError(f"content features {tuple(feats.shape)} and target {tuple(target.shape)} differ in C, H or W")
    wide = feats if feats.dtype == torch.float64 else feats.float()
    return (wide - target).square().flatten(1).mean(dim=1).sum()
