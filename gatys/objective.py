"""The objective of one scale: content + Σ style losses + total variation.

    total = content_weight · MSE(F_c(x), P)
          + style_weight · Σ_terms term.weight/|layers| · Σ_layers Σ_k w_k · L(F_l(x), T_l,k)
          + tv_weight · TV(x)

where w_k are the normalised style blend weights (a loss may fold them into one target
through `blend()`). Targets are computed once per scale; forward only runs the network
on x. Losses are reduced in float32 or wider, whatever the features' dtype.

Layer normalisation: F_l is divided by a fixed per-layer scale s_l (the engine passes
the style's RMS activation at each style layer, the content target's RMS at the
content layer), so every layer and every weight source (Caffe 0–255 inputs,
torchvision's standardised ones) presents unit-scale features to the losses. The
losses' formulas are applied exactly to the rescaled features, through each loss's
`scaled(F, s, T)`, which the Gram loss implements without dividing the map itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

import losses
from losses.content import content_loss
from losses.tv import tv_loss

Features = Callable[[torch.Tensor, Sequence[str]], dict]


@dataclass
class StyleTerm:
    """One style loss with its layers and, per layer, its (weight, target, position weights) entries.

    Position weights are None without masks; with them, (1, 1, h, w) at the layer's grid."""

    loss: losses.StyleLoss
    layers: tuple[str, ...]
    targets: dict[str, list[tuple[float, object, torch.Tensor | None]]]

    @classmethod
    def build(cls, loss: losses.StyleLoss, layers: Sequence[str], style_feats: Sequence[dict],
              blend_weights: Sequence[float]) -> "StyleTerm":
        """Targets for every layer from each style's features, blended where the loss allows."""
        targets = {}
        with torch.no_grad():
            for layer in layers:
                per_style = [loss.target(feats[layer]) for feats in style_feats]
                blended = loss.blend(per_style, blend_weights) if len(per_style) > 1 else None
                if blended is not None:
                    targets[layer] = [(1.0, blended, None)]
                else:
                    targets[layer] = [(weight, target, None) for weight, target in zip(blend_weights, per_style)]
        return cls(loss, tuple(layers), targets)

    @classmethod
    def build_masked(cls, loss: losses.StyleLoss, layers: Sequence[str], style_feats: Sequence[dict],
                     blend_weights: Sequence[float], output_weights: Sequence[dict],
                     style_weights: Sequence[dict | None]) -> "StyleTerm":
        """Style k's target from its style mask's positions (all without one), compared over its content mask's.

        Each entry is weighted by the share of the layer's positions its mask covers (its mean), so a
        region is styled per position as strongly as a one-style run styles the whole picture, whatever
        its size; a region that a layer's grid loses entirely (inside propagation) gives no term there."""
        targets = {}
        with torch.no_grad():
            for layer in layers:
                entries = []
                for feats, weight, output, style in zip(style_feats, blend_weights, output_weights, style_weights):
                    positions = output[layer]
                    share = positions.mean().item()
                    source = None if style is None else style[layer]
                    if share <= 0 or (source is not None and not source.sum().item() > 0):
                        continue
                    entries.append((weight * share, loss.target(feats[layer], weights=source), positions))
                targets[layer] = entries
        return cls(loss, tuple(layers), targets)

    def value(self, feats: dict, scales: dict[str, float]) -> torch.Tensor:
        """The weighted loss of the features, each layer's divided by its scale."""
        total = 0.0
        for layer in self.layers:
            for weight, target, positions in self.targets[layer]:
                scale = scales.get(layer, 1.0)
                value = self.loss.scaled(feats[layer], scale, target) if positions is None else \
                    self.loss.scaled(feats[layer], scale, target, weights=positions)
                total = total + weight * value
        return self.loss.weight / len(self.layers) * total


class Objective(nn.Module):
    """forward(x) → (total, parts) with parts = {'content', 'style', 'tv'}, each weighted and detached."""

    def __init__(self, features: Features, content_layer: str, content_target: torch.Tensor,
                 style_terms: Sequence[StyleTerm], content_weight: float, style_weight: float, tv_weight: float,
                 content_scale: float = 1.0, style_scales: dict[str, float] | None = None,
                 image_shape: tuple[int, int] | None = None):
        super().__init__()
        self.features = features
        self.content_layer = content_layer
        self.content_target = divide_features(content_target, content_scale)  # the same rounding as the output's
        self.style_terms = list(style_terms)
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.content_scale = content_scale
        self.style_scales = style_scales or {}
        self.image_shape = image_shape  # (H, W) of the images it scores, where the engine knows it
        self.style_layers = sorted({layer for term in self.style_terms for layer in term.layers})
        self.layers = sorted({*self.style_layers, *([content_layer] if content_weight else [])})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.from_features(x, self.features(x, self.layers))

    def from_features(self, x: torch.Tensor, feats: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """The objective of x from its features at self.layers (computed elsewhere: a batch's share)."""
        zero = x.new_zeros(())
        content = zero
        if self.content_weight:
            content = content_loss(divide_features(feats[self.content_layer], self.content_scale), self.content_target)
        style = sum((term.value(feats, self.style_scales) for term in self.style_terms), zero)
        tv = tv_loss(x) if self.tv_weight else zero
        parts = {
            "content": self.content_weight * content,
            "style": self.style_weight * style,
            "tv": self.tv_weight * tv,
        }
        total = parts["content"] + parts["style"] + parts["tv"]
        return total, {name: value.detach() for name, value in parts.items()}


def divide_features(feats: torch.Tensor, scale: float) -> torch.Tensor:
    """feats / scale in feats' dtype: one pass each way; the losses widen bf16 features themselves."""
    return feats * (1.0 / scale)
