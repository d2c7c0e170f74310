"""Spatial control: masks read and checked, and carried down VGG19 to each layer's grid.

A mask is a greyscale image at the aspect ratio of the image it covers: 1 (white) where a style
applies, 0 (black) where it does not, values between weigh a position partly (soft edges,
blends). The engine resizes a content mask with the scale schedule as it resizes the content,
then `layer_weights` brings it to each style layer's grid; a style loss weighs positions by it
(losses.StyleLoss, `weights=`). How a mask reaches a layer (`propagation`):

  area    the average of the mask over each 2×2 pooling window, layer after layer (what the
          image's own resize does): soft edges of one pooling cell, never empty (the default:
          docs/masks.md has the measurement that chose it)
  all     Gatys et al.'s "all": a position counts if its receptive field touches the region
          (a max over every 3×3 convolution and 2×2 pooling window)
  inside  Gatys et al.'s "inside": a position counts only if its receptive field lies inside the
          region (a min over the same windows); regions narrower than a deep layer's receptive
          field vanish there, and that layer then gives the region no style term
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from .errors import GatysError
from .images import resize
from .vgg import LAYERS

PROPAGATIONS = ("area", "all", "inside")
ASPECT_TOLERANCE = 0.02  # a mask's width/height may differ from its image's by this fraction (rounding of a resize)


def load_mask(path: str | Path, shape: tuple[int, int], what: str) -> torch.Tensor:
    """The mask file as (1, 1, h, w) float32 in [0, 1] at its own resolution, checked against its image's
    shape (H, W): GatysError if unreadable, of another aspect ratio, or empty. Each scale resizes it from
    this once (`RunMasks.at`), so a mask made at a scale's size stays exact there."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            grey = _grey(image)
    except FileNotFoundError:
        raise GatysError(f"cannot read {what} {path}: no such file") from None
    except (UnidentifiedImageError, OSError) as error:
        raise GatysError(f"cannot read {what} {path}: {getattr(error, 'strerror', None) or error}") from None
    height, width = shape
    mask_height, mask_width = grey.shape[-2:]
    if abs((mask_width / mask_height) / (width / height) - 1) > ASPECT_TOLERANCE:
        raise GatysError(f"{what} {path} is {mask_width}×{mask_height} px ({mask_width / mask_height:.2f}:1) but "
                         f"its image is {width}×{height} px ({width / height:.2f}:1): a mask must have the "
                         "aspect ratio of the image it covers")
    if not grey.amax() > 0:
        raise GatysError(f"{what} {path} is empty (black everywhere): white marks where its style goes")
    return grey


def _grey(image: Image.Image) -> torch.Tensor:
    """A PIL image as (1, 1, H, W) float32 in [0, 1]: its luminance (8 or 16 bits), times its alpha if any."""
    if image.mode.startswith("I") or image.mode == "F":  # 16-bit PNGs open as I;16, or as I before Pillow 10
        values = np.asarray(image, dtype=np.float32) / (1.0 if image.mode == "F" else 65535.0)
    else:
        rgba = image.convert("RGBA")
        values = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
        values = values * (np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0)
    return torch.from_numpy(np.clip(values, 0, 1).copy())[None, None]


def layer_weights(mask: torch.Tensor, layers: Sequence[str], propagation: str = "area") -> dict[str, torch.Tensor]:
    """The mask (1, 1, H, W) at the image's grid → each layer's (1, 1, h, w) position weights.

    Walks VGG19's layers in order: each 2×2 pooling halves the grid (floor, as the network's does);
    with `all`/`inside` each 3×3 convolution also widens/narrows the region by one position.
    """
    if propagation not in PROPAGATIONS:
        raise GatysError(f"mask-propagation must be one of {', '.join(PROPAGATIONS)}, not {propagation!r}")
    wanted, weights, current = set(layers), {}, mask if mask.dtype == torch.float64 else mask.float()
    for name in LAYERS:
        if not wanted - set(weights):
            break
        if name.startswith("conv") and propagation != "area":
            current = _window(current, 3, 1, propagation)
        elif name.startswith("pool"):
            current = F.avg_pool2d(current, 2) if propagation == "area" else _window(current, 2, 0, propagation)
        if name in wanted:
            weights[name] = current
    return weights


def _window(mask: torch.Tensor, size: int, padding: int, propagation: str) -> torch.Tensor:
    """Max (all) or min (inside) over size × size windows, stride size for pooling or 1 for a 3×3 convolution;
    the zero padding outside the image is neutral."""
    stride = 1 if padding else size
    if propagation == "all":
        return F.max_pool2d(mask, size, stride, padding)
    return -F.max_pool2d(-mask, size, stride, padding)


def check_masks(masks: Sequence[str] | None, style_masks: Sequence[str] | None, styles: int) -> None:
    """One content mask per style and, if given, one style mask per style: GatysError otherwise."""
    for name, given in (("masks", masks), ("style-masks", style_masks)):
        if given is not None and len(given) != styles:
            raise GatysError(f"{name}: {len(given)} mask{'s' * (len(given) != 1)} for {styles} style "
                             f"image{'s' * (styles != 1)}: give one per style, in the order of the styles")


@dataclass(frozen=True)
class RunMasks:
    """A run's masks at the resolution of its images: one per style for the content, and where given one per
    style for the style images (None: the whole style image)."""

    content: tuple[torch.Tensor, ...]
    styles: tuple[torch.Tensor | None, ...]
    propagation: str

    def at(self, content_shape: tuple[int, int], style_shapes: Sequence[tuple[int, int]]) -> "RunMasks":
        """The masks resized as the images are at one scale."""
        return RunMasks(tuple(resize(mask, shape=content_shape) for mask in self.content),
                        tuple(None if mask is None else resize(mask, shape=shape)
                              for mask, shape in zip(self.styles, style_shapes)), self.propagation)


def run_masks(masks: Sequence[str] | None, style_masks: Sequence[str] | None, propagation: str,
              content_shape: tuple[int, int], style_shapes: Sequence[tuple[int, int]]) -> RunMasks | None:
    """The masks a config names, read and checked against its images (None without masks)."""
    if masks is None:
        return None
    check_masks(masks, style_masks, len(style_shapes))
    content = tuple(load_mask(path, content_shape, "mask") for path in masks)
    styles = tuple(load_mask(path, shape, "style mask") for path, shape in zip(style_masks, style_shapes)) \
        if style_masks is not None else (None,) * len(style_shapes)
    return RunMasks(content, styles, propagation)
