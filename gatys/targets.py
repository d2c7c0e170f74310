"""One scale's objective built from the images: sizes checked, targets computed, layers normalised.

At each scale the content and styles are resized, their features computed once (the
styles' through the cache), the layer scales taken from them (`normalize_layers`) and each
style loss's targets built; the Objective that results only runs the network on x.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from losses.base import require_position_weights

from . import network_cache
from .config import ADAIN_LAYER, TransferConfig
from .device import autocast
from .errors import GatysError
from .images import resize
from .masks import RunMasks, layer_weights
from .network_cache import NetworkCache
from .norm import adain
from .objective import Objective, StyleTerm, divide_features
from .vgg import TORCHVISION_INDEX, VGGFeatures, min_side


def objective_at(cache: NetworkCache, size: int, config: TransferConfig, network: VGGFeatures, precision: str,
                 content: torch.Tensor, styles: Sequence[torch.Tensor], style_losses: Sequence,
                 blend: Sequence[float], masks: RunMasks | None = None) -> tuple[Objective, torch.Tensor]:
    """The objective at longest side `size`, and the content resized to it.

    The styles are at `config.style_size_at(size)`: `style_scale` times `size`, or times the last
    scale's size at every scale (style_size final), so that the coarse scales match the statistics
    of the style as the finished picture will see it. Masks are resized as their images are.
    """
    device = next(network.parameters()).device
    content_scaled = resize(content, size).to(device)
    style_size = config.style_size_at(size)
    styles_scaled = [resize(style, style_size).to(device) for style in styles]
    if masks is not None:
        masks = masks.at(tuple(content_scaled.shape[-2:]), [tuple(style.shape[-2:]) for style in styles_scaled])
    objective = build_objective(cache, config, network, precision, content_scaled, styles_scaled, style_losses,
                                blend, lambda layers: config.style_layers_at(size, layers),
                                content_weight=config.content_weight_at(size), masks=masks)
    return objective, content_scaled


def build_objective(cache: NetworkCache, config: TransferConfig, network: VGGFeatures, precision: str,
                    content: torch.Tensor, styles: Sequence[torch.Tensor], style_losses: Sequence,
                    blend: Sequence[float], layers_at: Callable[[Sequence[str]], Sequence[str]] | None = None,
                    content_weight: float | None = None, masks: RunMasks | None = None) -> Objective:
    """The objective of images already at their size: targets, layer scales and style terms.

    `layers_at` picks, from each loss's layers, those used here (all by default; objective_at passes
    config.style_layers_at for the scale, which leaves deep layers out of coarse scales), and
    `content_weight` the content term's weight (config.content_weight by default; objective_at passes
    the scale's, raised before the last scale). `masks` (at the images' sizes) give each style its
    region: the style terms weigh positions by the masks brought to each layer (gatys/masks.py).
    """
    device = content.device
    layers_at = layers_at or tuple
    content_layer, style_layers = needed_layers(config, style_losses, layers_at)
    check_size("content", content, [content_layer, *style_layers])
    for style in styles:
        check_size("style", style, style_layers)
    style_feats = [cache.style_features(network, style, sorted(style_layers), precision) for style in styles]
    content_target = cache.features(network, content, [content_layer], precision)[content_layer]
    if config.content_target == "adain":
        content_target = sum(w * adain(content_target, feats[ADAIN_LAYER]) for w, feats in zip(blend, style_feats))
    content_scale = rms([content_target]) if config.normalize_layers else 1.0
    style_scales = {layer: rms([f[layer] for f in style_feats], blend) if config.normalize_layers else 1.0
                    for layer in style_layers}
    style_feats = [{layer: divide_features(f[layer], style_scales[layer]) for layer in style_layers}
                   for f in style_feats]
    if masks is None:
        terms = [StyleTerm.build(loss, layers_at(loss.layers or config.style_layers), style_feats, blend)
                 for loss in style_losses]
    else:
        terms = masked_terms(style_losses, [layers_at(loss.layers or config.style_layers) for loss in style_losses],
                             style_feats, blend, masks, device)

    def features(x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        with autocast(device, precision):
            return network(x.contiguous(memory_format=network_cache.memory_format(device)), layers)

    content_weight = config.content_weight if content_weight is None else content_weight
    return Objective(features, content_layer, content_target, terms, content_weight, config.style_weight,
                     config.tv_weight, content_scale=content_scale, style_scales=style_scales,
                     image_shape=tuple(content.shape[-2:]))


def masked_terms(style_losses: Sequence, layers: Sequence[Sequence[str]], style_feats: Sequence[dict],
                 blend: Sequence[float], masks: RunMasks, device: torch.device) -> list[StyleTerm]:
    """Style terms whose style k acts on mask k's positions, from mask k of its style image where given."""
    for loss in style_losses:
        try:
            require_position_weights(loss)
        except ValueError as error:
            raise GatysError(f"masks: {error}") from None
    every_layer = sorted({layer for names in layers for layer in names})
    output = [{layer: weights.to(device) for layer, weights in layer_weights(mask, every_layer,
                                                                            masks.propagation).items()}
              for mask in masks.content]
    style = [None if mask is None else {layer: weights.to(device) for layer, weights
                                        in layer_weights(mask, every_layer, masks.propagation).items()}
             for mask in masks.styles]
    return [StyleTerm.build_masked(loss, names, style_feats, blend, output, style)
            for loss, names in zip(style_losses, layers)]


def needed_layers(config: TransferConfig, style_losses: Sequence,
                  layers_at: Callable[[Sequence[str]], Sequence[str]] = tuple) -> tuple[str, set[str]]:
    """The content layer and the style layers a run computes (AdaIN's layer with --content-target adain)."""
    style_layers = {layer for loss in style_losses for layer in layers_at(loss.layers or config.style_layers)}
    if config.content_target == "adain":
        return ADAIN_LAYER, style_layers | {ADAIN_LAYER}
    return config.content_layer, style_layers


def check_size(what: str, image: torch.Tensor, layers: Sequence[str]) -> None:
    """Refuse an image too small for VGG to pool through to the deepest layer asked for."""
    smallest = min_side(layers)
    if min(image.shape[-2:]) < smallest:
        height, width = image.shape[-2:]
        raise GatysError(f"the {what} image is {width}×{height} px at this scale, too small for layer "
                         f"{max(layers, key=TORCHVISION_INDEX.__getitem__)}: each side must be at least {smallest} px")


def rms(feats: Sequence[torch.Tensor], weights: Sequence[float] = (1.0,)) -> float:
    """Root mean square activation over feature maps, each weighted (styles by their blend weight).

    A floor keeps an all-zero (dead) layer from dividing by zero.
    """
    return max(sum(w * f.float().square().mean().item() for f, w in zip(feats, weights)) ** 0.5, 1e-8)
