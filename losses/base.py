"""The StyleLoss contract shared by every registered loss.

A style loss compares the feature maps of the image being optimised with
statistics of a style image's feature maps:

    T = loss.target(style_feats)      # once per scale, no gradient
    value = loss(feats, T)            # a scalar, differentiable in feats

Features are (B, C, H, W); the value is summed over the batch. The style and the
output may have different H×W. This module depends on torch only.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

Target = Any  # a tensor, or a tuple / dict of tensors


class StyleLoss(nn.Module):
    """Base class: subclasses implement `target` and `forward`.

    `weight` multiplies the loss of every layer it is applied to; its default is the
    class attribute `default_weight`, chosen so that, with the engine's default content
    weight, each loss gives a comparably strong stylisation (see docs/losses.md). `layers`
    names the VGG layers the loss is applied to (None: the engine's default style layers).
    `capturable` says whether forward can be recorded in a CUDA graph: it is False for a
    loss that reads a device value on the host (a check, a data-dependent size), and the
    engine then evaluates such an objective eagerly.
    """

    name: str = ""
    default_weight: float = 1.0
    capturable: bool = True

    def __init__(self, weight: float | None = None, layers: Sequence[str] | str | None = None):
        super().__init__()
        self.weight = float(self.default_weight if weight is None else weight)
        if isinstance(layers, str):
            layers = [layers]
        self.layers = tuple(layers) if layers is not None else None

    def target(self, feats: torch.Tensor) -> Target:
        """Statistics of style features (1, C, H, W) that `forward` compares against."""
        raise NotImplementedError

    def forward(self, feats: torch.Tensor, target: Target) -> torch.Tensor:
        """The loss of feats (B, C, H, W) against a target, summed over the batch."""
        raise NotImplementedError

    def scaled(self, feats: torch.Tensor, scale: float, target: Target) -> torch.Tensor:
        """forward(feats / scale, target): how the engine applies its layer normalisation.

        A loss whose statistics scale exactly overrides this to skip the division, a pass
        over the whole feature map each way (the Gram loss: Ĝ(F/s) = Ĝ(F)/s²).
        """
        return self(feats if scale == 1.0 else feats * (1.0 / scale), target)

    def blend(self, targets: Sequence[Target], weights: Sequence[float]) -> Target | None:
        """One target equivalent to Σ_k w_k·L(x, T_k), or None when there is none.

        None makes the objective sum the weighted losses against each target, which is
        the definition; losses whose statistics mix linearly override this to save work.
        """
        return None

    def resample(self, generator: torch.Generator) -> None:
        """Redraw random choices (positions, projections); a no-op for exact losses."""

    def extra_repr(self) -> str:
        return f"weight={self.weight:g}"


def check_features(feats: torch.Tensor, what: str = "features") -> None:
    """Raise a clear error unless feats is a (B, C, H, W) tensor."""
    if not isinstance(feats, torch.Tensor) or feats.dim() != 4:
        shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
        raise ValueError(f"{what} must be a (B, C, H, W) tensor, got {shape}")
