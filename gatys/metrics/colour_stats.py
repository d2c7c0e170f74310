"""Colour statistics of a picture in CIELAB, and a distance between pictures' palettes that no style loss optimises.

What this space sees: the palette, i.e. how the picture's pixels are spread over lightness (L*), green–red (a*)
and blue–yellow (b*), in units close to perceived colour difference. What it cannot see: where the colours are
or how they are arranged; shuffling the pixels changes nothing, so strokes, texture and layout are invisible,
and (being per channel) neither is which lightness goes with which hue.

  srgb_to_lab(image)              (1, 3, H, W) sRGB in [0, 1] → (1, 3, H, W) float64 L*a*b* (D65)
  colour_statistics(image)        1-D float64: per channel of L*a*b*, the mean, std and COLOUR_QUANTILES
  wasserstein2_squared(x, y)      exact W2² between two 1-D empirical distributions (any two sizes)
  colour_distance_matrix(images)  D(a, b) = Σ over L*, a*, b* of W2² between the two pictures' pixel values

The conversion is written here (the standard sRGB → XYZ → CIELAB formulas), not taken from scikit-image, so
the package needs torch only. Depends on torch and numpy (and on gatys.images, gatys.errors and the input
helper of gatys.metrics.fidelity): never on the engine, the network, the config or the jobs.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import torch

from gatys.images import ImageLike

from .fidelity import picture

COLOUR_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# sRGB primaries → CIE XYZ under D65 (IEC 61966-2-1), and the D65 white point it maps (1, 1, 1) to.
_SRGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
                (0.2126729, 0.7151522, 0.0721750),
                (0.0193339, 0.1191920, 0.9503041))
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_DELTA = 6 / 29  # where CIELAB's cube root gives way to its linear segment


def srgb_to_lab(image: ImageLike) -> torch.Tensor:
    """sRGB in [0, 1] → CIELAB (D65, 2° observer), (1, 3, H, W) float64: L* in [0, 100], a*, b* about ±100.

    Undo the sRGB transfer curve (linear below 0.04045, else ((c + 0.055) / 1.055)^2.4), map linear RGB to
    XYZ with the sRGB matrix, divide by the white point, then L* = 116 f(Y) − 16, a* = 500 (f(X) − f(Y)),
    b* = 200 (f(Y) − f(Z)) with f(t) = t^(1/3) above (6/29)³ and t / (3 (6/29)²) + 4/29 below.
    """
    rgb = picture(image).double()
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055).pow(2.4))
    matrix = rgb.new_tensor(_SRGB_TO_XYZ) / rgb.new_tensor(_WHITE_D65).unsqueeze(1)
    xyz = torch.einsum("ij,bjhw->bihw", matrix, linear)
    cube_root = xyz.clamp_min(_DELTA ** 3).pow(1 / 3)
    f = torch.where(xyz > _DELTA ** 3, cube_root, xyz / (3 * _DELTA ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def _channels(image: ImageLike) -> torch.Tensor:
    """(3, H·W) float64: each L*a*b* channel's pixel values."""
    return srgb_to_lab(image)[0].flatten(1)


def colour_statistics(image: ImageLike) -> torch.Tensor:
    """Per channel L*, a*, b*: mean, standard deviation and the COLOUR_QUANTILES; 1-D float64, 3 × 7 values.

    A summary to read or tabulate (in L*a*b* units); the distance below uses the whole distributions.
    """
    values = _channels(image)
    levels = values.new_tensor(COLOUR_QUANTILES)
    quantiles = torch.quantile(values, levels, dim=1).T
    summary = torch.cat([values.mean(dim=1, keepdim=True), values.std(dim=1, unbiased=False, keepdim=True),
                         quantiles], dim=1)
    return summary.flatten()


def wasserstein2_squared(sorted_x: np.ndarray, sorted_y: np.ndarray) -> float:
    """W2² = ∫₀¹ (F⁻¹(t) − G⁻¹(t))² dt between the empirical distributions of two sorted 1-D samples (exact).

    Both quantile functions are step functions (F⁻¹ is x_(i) on ((i−1)/n, i/n]), so the integral is a sum over
    the pieces between the union of their breakpoints; with n = m it is mean((x_(i) − y_(i))²), the optimal
    (monotone) matching.
    """
    n, m = len(sorted_x), len(sorted_y)
    if n == m:
        return float(np.mean((sorted_x - sorted_y) ** 2))
    breaks = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)
    widths = np.diff(breaks, prepend=0.0)
    middles = breaks - widths / 2
    x = sorted_x[np.minimum((middles * n).astype(np.int64), n - 1)]
    y = sorted_y[np.minimum((middles * m).astype(np.int64), m - 1)]
    return float(np.sum(widths * (x - y) ** 2))


def colour_distance_matrix(images: Sequence[ImageLike]) -> np.ndarray:
    """D(a, b) = Σ_c W2²(P_a,c, P_b,c) over c ∈ {L*, a*, b*}, between every pair; (N, N) float64.

    P_a,c is the distribution of picture a's pixel values in channel c, at the picture's own resolution (no
    resizing: that would blend neighbouring pixels and make the distance depend on their arrangement). W2² is
    exact (wasserstein2_squared), in squared L*a*b* units, so D is a sum of squared distances between
    distributions: symmetric, ≥ 0, zero exactly when the three channel histograms agree (whatever the pixels'
    order or the pictures' sizes), and larger the farther the palettes are apart. Being per channel it
    misses how the channels pair up (which lightness goes with which hue).
    """
    channels = [np.sort(_channels(image).numpy(), axis=1) for image in images]
    matrix = np.zeros((len(channels), len(channels)))
    for i, j in itertools.combinations(range(len(channels)), 2):
        matrix[i, j] = matrix[j, i] = sum(wasserstein2_squared(a, b) for a, b in zip(channels[i], channels[j]))
    return matrix
