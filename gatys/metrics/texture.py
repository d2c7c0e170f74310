"""Portilla–Simoncelli texture statistics of a picture, and a distance between pictures' textures outside VGG.

The Portilla–Simoncelli (PS) statistics (Portilla & Simoncelli 2000, as computed by plenoptic) describe a
texture by a complex steerable pyramid: the marginal moments of the image and its lowpass versions, the
auto-correlations of the bands and of their magnitudes, and the correlations of magnitudes across
orientations and across scales. They are fixed formulas with no learned weights, and no style loss of this
project optimises them, so they judge the outputs of those losses from outside their feature space.

What this space sees: oriented, multi-scale structure: stroke direction and length, periodicity, edge
sharpness, how energy is spread over scales and orientations. What it cannot see: colour (it reads luminance
only), overall brightness and contrast (the luminance is standardised first), and layout (the statistics
are averages over the picture, so rearranging its regions leaves them nearly unchanged).

  texture_statistics(image, size)        1-D float64 PS statistics of the picture's standardised luminance
  statistic_scales(statistics, families) each statistic's spread over a set of pictures, with a floor
  standardised_distance_matrix(...)      D = mean over statistics of the squared standardised difference
  texture_distance_matrix(images, size)  the two above over the pictures' texture_statistics
  texture_families()                     the plenoptic group of each statistic

The picture: resized (antialiased bicubic) so its short side is `size` px (at least MIN_SIDE = 128, where the
coarsest band still holds the 7 px correlation window; the short side, so any aspect ratio works), centre-cropped
so both sides are multiples of 2^n_scales (the pyramid halves them n_scales times; at most 15 px go), then
reduced to luma Y = 0.299 R + 0.587 G + 0.114 B and standardised to zero mean and unit variance.
PS_CONFIGURATION is fixed, so statistics of different runs compare. Of plenoptic's 710 statistics the luminance minimum and maximum are
left out (single-pixel extremes; plenoptic's own synthesis loss zeroes them too): 708 remain.

plenoptic is an optional dependency (`pip install 'gatys[judge]'`), imported only when statistics are
computed. Depends on torch and numpy (and on gatys.images, gatys.errors and the input helpers of
gatys.metrics.fidelity): never on the engine, the network, the config or the jobs.
"""
from __future__ import annotations

import functools
import itertools
from typing import Sequence

import numpy as np
import torch

from gatys.errors import GatysError
from gatys.images import ImageLike, resize

from .fidelity import luminance, picture

PS_CONFIGURATION = {"n_scales": 4, "n_orientations": 4, "spatial_corr_width": 7}
DEFAULT_SIZE = 256
# The lowpass residual is the picture divided by 2^n_scales on each side, and it must hold the correlation window.
MIN_SIDE = 2 ** PS_CONFIGURATION["n_scales"] * (PS_CONFIGURATION["spatial_corr_width"] + 1)  # 128 px
# A statistic's spread is floored at this fraction of its family's RMS magnitude over the set (see
# statistic_scales), and at ABSOLUTE_FLOOR, so differences at the level of rounding never count as texture.
RELATIVE_FLOOR = 0.01
ABSOLUTE_FLOOR = 1e-9
DROPPED_PIXEL_STATISTICS = (4, 5)  # plenoptic's pixel statistics: mean, var, skew, kurtosis, min, max
INSTALL_HINT = "texture statistics need plenoptic: pip install 'gatys[judge]'"


# ---------------------------------------------------------------------------- the model

def _portilla_simoncelli_class():
    """plenoptic's PortillaSimoncelli (plenoptic.models from 2.0, plenoptic.simulate in 1.x), or a GatysError."""
    try:
        import plenoptic
    except ImportError:
        raise GatysError(INSTALL_HINT) from None
    models = getattr(plenoptic, "models", None)  # 2.x loads it lazily; 1.x has none
    if models is not None and hasattr(models, "PortillaSimoncelli"):
        return models.PortillaSimoncelli
    from plenoptic.simulate import PortillaSimoncelli
    return PortillaSimoncelli


def _model(shape: tuple[int, int]) -> tuple[torch.nn.Module, torch.Tensor, tuple[str, ...]]:
    """The PS model for pictures of `shape`, the indices of the statistics kept, and each one's family name."""
    return _built_model(_portilla_simoncelli_class(), tuple(shape))


@functools.lru_cache(maxsize=8)
def _built_model(model_class, shape: tuple[int, int]) -> tuple[torch.nn.Module, torch.Tensor, tuple[str, ...]]:
    model = model_class(shape, **PS_CONFIGURATION).to(torch.float64)
    count = model(torch.zeros(1, 1, *shape, dtype=torch.float64)).shape[-1]
    # convert_to_dict places each entry of the statistics vector in its named group (NaN where redundant)
    layout = model.convert_to_dict(torch.arange(count, dtype=torch.float64).view(1, 1, count))
    names = [""] * count
    for name, positions in layout.items():
        for position in positions[~torch.isnan(positions)].long().tolist():
            names[position] = name
    pixel = [int(p) for p in layout["pixel_statistics"].flatten()[list(DROPPED_PIXEL_STATISTICS)].tolist()]
    kept = torch.tensor([index for index in range(count) if index not in pixel])
    return model, kept, tuple(names[index] for index in kept.tolist())


def texture_luminance(image: ImageLike, size: int = DEFAULT_SIZE) -> torch.Tensor:
    """(1, 1, h, w) float64 standardised luma: short side `size`, both sides cropped to multiples of 2^n_scales."""
    if int(size) != size or size < MIN_SIDE:
        raise GatysError(f"texture statistics need a size of at least {MIN_SIDE} px (the short side), got {size}")
    tensor = picture(image)
    height, width = tensor.shape[-2:]
    scale = size / min(height, width)
    tensor = resize(tensor, shape=(max(size, round(height * scale)), max(size, round(width * scale))))
    step = 2 ** PS_CONFIGURATION["n_scales"]
    height, width = (side // step * step for side in tensor.shape[-2:])
    top, left = (tensor.shape[-2] - height) // 2, (tensor.shape[-1] - width) // 2
    grey = luminance(tensor[..., top:top + height, left:left + width].double())
    return (grey - grey.mean()) / grey.std(unbiased=False).clamp_min(1e-6)


def texture_statistics(image: ImageLike, size: int = DEFAULT_SIZE) -> torch.Tensor:
    """The PS statistics (PS_CONFIGURATION) of the picture's texture_luminance at `size`: 1-D float64, 708 values."""
    grey = texture_luminance(image, size)
    model, kept, _ = _model(tuple(grey.shape[-2:]))
    with torch.no_grad():
        return model(grey)[0, 0, kept].clone()


def texture_families() -> tuple[str, ...]:
    """The plenoptic group name of each entry of texture_statistics (the same for every picture shape)."""
    return _model((MIN_SIDE, MIN_SIDE))[2]


# ---------------------------------------------------------------------------- the distance

def statistic_scales(statistics: torch.Tensor, families: Sequence[str] | None = None) -> torch.Tensor:
    """s_k = sqrt(var_k + (RELATIVE_FLOOR · m_g(k))² + ABSOLUTE_FLOOR²) for the (N, K) statistics of N pictures.

    var_k is statistic k's variance over the N pictures, m_g the RMS of all values of k's family g over them
    (one family when `families` is None). The floor keeps a statistic that hardly moves over the set, relative
    to the statistics it shares units with, from being blown up to the weight of one that moves a lot.
    """
    values = statistics.double()
    variance = values.var(dim=0, unbiased=False)
    labels = list(families) if families is not None else [""] * values.shape[1]
    magnitude = torch.empty_like(variance)
    for family in set(labels):
        members = torch.tensor([label == family for label in labels])
        magnitude[members] = values[:, members].square().mean().sqrt()
    return (variance + (RELATIVE_FLOOR * magnitude) ** 2 + ABSOLUTE_FLOOR ** 2).sqrt()


def standardised_distance_matrix(statistics: torch.Tensor, families: Sequence[str] | None = None) -> np.ndarray:
    """D(a, b) = (1/K) Σ_k ((x_a,k − x_b,k) / s_k)² between the rows of (N, K) statistics; (N, N) float64.

    s_k is statistic_scales over these N rows. Why standardise by the set's own spread: the PS statistics
    come in incommensurable units (variances, kurtoses near 3, correlations in [-1, 1], raw
    auto-covariances), so a plain Euclidean distance would be the distance of the few largest; divided by
    their spread over the pictures being compared, each statistic counts by how much it separates those
    pictures, whatever its unit (a diagonal Mahalanobis distance). The scale is a function of the whole set,
    blind to which loss or seed made which picture, so relabelling the pictures (a permutation test) leaves D
    unchanged. A scale from the style image alone was rejected: one picture has no spread, and dividing by
    a statistic's own value explodes for correlations near 0. Consequences: D is relative to the set (add
    pictures and it changes), and it needs at least three pictures to mean anything (with two, every
    statistic is exactly one spread apart and D is constant up to the floors). Two different pictures of the
    set are on average 2N/(N − 1) apart (without the floors); D is a squared distance: symmetric, ≥ 0, zero on
    the diagonal.
    """
    values = statistics.double()
    standardised = (values - values.mean(dim=0)) / statistic_scales(values, families)
    matrix = np.zeros((values.shape[0], values.shape[0]))
    for i, j in itertools.combinations(range(values.shape[0]), 2):
        matrix[i, j] = matrix[j, i] = float((standardised[i] - standardised[j]).square().mean())
    return matrix


def texture_distance_matrix(images: Sequence[ImageLike], size: int = DEFAULT_SIZE) -> np.ndarray:
    """standardised_distance_matrix of the pictures' texture_statistics at `size` (floors per plenoptic group)."""
    if not images:
        return np.zeros((0, 0))
    statistics = torch.stack([texture_statistics(image, size) for image in images])
    return standardised_distance_matrix(statistics, texture_families())
