"""Pure functions over feature tensors that the registered losses are built from.

Every function reduces in float32 or wider, whatever the input dtype (bf16 features
from an autocast network come in; float32 statistics go out), and keeps float64 for
float64 inputs so tests can compare against exact references.
"""
from __future__ import annotations

import torch

from .base import check_features


def _wide(x: torch.Tensor) -> torch.Tensor:
    """x in float32, or float64 if it already is."""
    return x if x.dtype == torch.float64 else x.float()


def style_positions(feats: torch.Tensor) -> torch.Tensor:
    """Style features (B, C, H, W) → (C, B·H·W): every position of every image is one sample."""
    check_features(feats, "style features")
    return _wide(feats).transpose(0, 1).flatten(1)


def gram_matrix(feats: torch.Tensor) -> torch.Tensor:
    """Ĝ = F Fᵀ / M per batch item: (B, C, H, W) → (B, C, C), averaged over the M = H·W positions."""
    check_features(feats)
    flat = _wide(feats).flatten(2)
    return flat @ flat.transpose(1, 2) / flat.shape[-1]


def channel_means(feats: torch.Tensor) -> torch.Tensor:
    """μ per batch item and channel: (B, C, H, W) → (B, C)."""
    check_features(feats)
    return _wide(feats).mean(dim=(2, 3))


def channel_moments(feats: torch.Tensor, eps: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, σ) per batch item and channel, σ = sqrt(biased variance + eps): two (B, C) tensors."""
    check_features(feats)
    wide = _wide(feats)
    mean = wide.mean(dim=(2, 3))
    var = wide.var(dim=(2, 3), unbiased=False)
    return mean, torch.sqrt(var + eps)
