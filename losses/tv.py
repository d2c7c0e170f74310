"""Total variation: the squared anisotropic smoothness term on the image (not a style loss).

    TV(x) = mean((x[..., :, 1:] − x[..., :, :-1])²) + mean((x[..., 1:, :] − x[..., :-1, :])²)

Means over all differences (channels included) keep it independent of image size; x is
the [0, 1] image, summed over the batch.
"""
from __future__ import annotations

import torch


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    if image.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got {tuple(image.shape)}")
    dx = (image[..., :, 1:] - image[..., :, :-1]).square().flatten(1).mean(dim=1)
    dy = (image[..., 1:, :] - image[..., :-1, :]).square().flatten(1).mean(dim=1)
    return (dx + dy).sum()
