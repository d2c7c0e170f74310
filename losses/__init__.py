"""gatys style losses: a registry of style losses over VGG feature maps.

    import losses
    loss = losses.create("mmd-gaussian:sigma=auto")
    T = loss.target(style_feats)          # (1, C, H, W) features of the style
    value = loss(feats, T)                # scalar, differentiable in feats

This package depends on torch only and never imports gatys.
"""
from .base import StyleLoss
from .registry import available, create, describe, parse_spec, register, resolved

# Importing the families registers them.
from . import gram, mmd, moments, wasserstein  # noqa: F401,E402

__all__ = ["StyleLoss", "available", "create", "describe", "parse_spec", "register", "resolved"]
