"""The networks and the features of fixed images, loaded and computed once per process.

A Transfer reuses both across runs: a study or a gallery loads each VGG once per device
and precision, and computes each style image's features once per size (an LRU keyed by
the image's bytes, so the same picture given twice is one entry).
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Sequence

import torch

from .device import autocast
from .vgg import VGGFeatures, load_vgg


def memory_format(device: torch.device) -> torch.memory_format:
    """The layout the network runs in: channels_last on CUDA and the CPU."""
    return torch.channels_last if device.type in ("cuda", "cpu") else torch.contiguous_format


def to_device(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    return image.to(device).contiguous(memory_format=memory_format(device))


class NetworkCache:
    """VGG networks by (weights, convention, pooling, device, precision) and style features (LRU)."""

    STYLE_CACHE_SIZE = 8

    def __init__(self) -> None:
        self._networks: dict[tuple, VGGFeatures] = {}
        self._style_features: OrderedDict[tuple, dict] = OrderedDict()

    def network(self, weights: str, convention: str | None, pooling: str, device: torch.device,
                precision: str) -> VGGFeatures:
        """The VGG on device, loaded once; for bf16 its conv weights are stored in bf16.

        The network then runs in bf16 after its float32 preprocessing, so nothing is re-cast at
        every evaluation.
        """
        key = (weights, convention, pooling, str(device), precision)
        if key not in self._networks:
            network = load_vgg(weights, pooling, convention).to(device)
            network = network.to(memory_format=memory_format(device))
            if precision == "bf16":
                network.convs.to(torch.bfloat16)
            self._networks[key] = network
        return self._networks[key]

    def features(self, network: VGGFeatures, image: torch.Tensor, layers: Sequence[str],
                 precision: str) -> dict[str, torch.Tensor]:
        """Network features of a fixed image, computed without autograd, in float32."""
        device = next(network.parameters()).device
        with torch.inference_mode(), autocast(device, precision):
            feats = network(to_device(image, device), layers)
        return {name: value.float().clone() for name, value in feats.items()}

    def style_features(self, network: VGGFeatures, image: torch.Tensor, layers: Sequence[str],
                       precision: str) -> dict[str, torch.Tensor]:
        """Like features(), remembered by image bytes, size, layers and network."""
        key = (id(network), _digest(image), tuple(image.shape), tuple(sorted(layers)), precision)
        if key in self._style_features:
            self._style_features.move_to_end(key)
            return self._style_features[key]
        feats = self.features(network, image, layers, precision)
        self._style_features[key] = feats
        while len(self._style_features) > self.STYLE_CACHE_SIZE:
            self._style_features.popitem(last=False)
        return feats


def _digest(image: torch.Tensor) -> str:
    return hashlib.sha1(image.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
