"""Content fidelity: how much of the content's structure a stylised picture keeps, measured without a network.

The style changes colours, textures and fine strokes; what should survive is the content's layout: where its
edges and shapes are. Both scores here look only at that layout: the pictures are reduced to luminance at a
low resolution (128 px on the long side by default, antialiased), where brushwork has mostly averaged away and
the content's large edges remain.

  content_fidelity   Pearson correlation of the Sobel gradient-magnitude maps (1 for the content itself,
                     about 0 for an unrelated picture; blind to global colour shifts and contrast changes)
  luminance_ssim     the mean SSIM of the two luminance maps (Wang et al. 2004), a second, stricter view that
                     also counts local brightness and contrast

Depends on torch only (and on gatys.images for resizing, gatys.errors for the one error type): never on the
engine, the network, the config or the jobs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gatys.errors import GatysError
from gatys.images import ImageLike, as_image, resize

DEFAULT_SIZE = 128
# Rec. 601 luma weights: the usual Y of Y'CbCr, close enough to perceived brightness for structure.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
MIN_SIDE = 8  # below this a picture has no structure to compare
_SSIM_C1 = 0.01 ** 2
_SSIM_C2 = 0.03 ** 2
_ASPECT_TOLERANCE = 0.05


# ---------------------------------------------------------------------------- inputs

def picture(image: ImageLike, name: str = "image") -> torch.Tensor:
    """A path, PIL image or (3, H, W) / (1, 3, H, W) tensor as a (1, 3, H, W) float32 tensor in [0, 1].

    Every bad input is a GatysError naming `name`: a wrong shape, non-finite values, a side under 8 px.
    """
    try:
        tensor = as_image(image)
    except GatysError as error:
        raise GatysError(f"{name}: {error}") from None
    if not torch.isfinite(tensor).all():
        raise GatysError(f"{name}: the image holds NaN or infinite values")
    if min(tensor.shape[-2:]) < MIN_SIDE:
        raise GatysError(f"{name}: the image is {tensor.shape[-2]}×{tensor.shape[-1]} px; "
                         f"both sides must be at least {MIN_SIDE} px")
    return tensor.cpu()


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) RGB → (1, 1, H, W) luma Y = 0.299 R + 0.587 G + 0.114 B.

    Structure lives in luminance; a global colour shift moves Y by a constant, which gradients ignore.
    """
    weights = image.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
    return (image * weights).sum(dim=1, keepdim=True)


def matched_luminance(output: ImageLike, content: ImageLike,
                      size: int = DEFAULT_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """The luminance of both pictures at one low-resolution shape: the content's, at `size` px long side.

    The output is resized to exactly that shape, so a 512 px output compares with a 96 px content. Pictures
    whose aspect ratios differ by more than 5 % are not two framings of one scene: a GatysError.
    """
    output, content = picture(output, "output"), picture(content, "content")
    _check_same_framing(output, content)
    content_small = resize(content, size=size)
    output_small = resize(output, shape=tuple(content_small.shape[-2:]))
    return luminance(output_small).double(), luminance(content_small).double()


def _check_same_framing(output: torch.Tensor, content: torch.Tensor) -> None:
    """The output of a transfer keeps the content's aspect ratio (up to rounding of the sides)."""
    ratio_output = output.shape[-1] / output.shape[-2]
    ratio_content = content.shape[-1] / content.shape[-2]
    if abs(ratio_output / ratio_content - 1.0) > _ASPECT_TOLERANCE:
        raise GatysError(f"the output ({output.shape[-2]}×{output.shape[-1]}) and the content "
                         f"({content.shape[-2]}×{content.shape[-1]}) have different aspect ratios; "
                         f"give the content the output was made from")


# ---------------------------------------------------------------------------- gradient correlation

def sobel_magnitude(grey: torch.Tensor) -> torch.Tensor:
    """|∇Y| = sqrt(Gx² + Gy²) with the 3×3 Sobel kernels, (1, 1, H, W) → (1, 1, H-2, W-2).

    Valid positions only: padding would invent edges along the border that both pictures share.
    """
    smooth = grey.new_tensor([1.0, 2.0, 1.0])
    step = grey.new_tensor([-1.0, 0.0, 1.0])
    kernel_x = torch.outer(smooth, step)
    kernels = torch.stack([kernel_x, kernel_x.T]).unsqueeze(1) / 8.0
    gradients = F.conv2d(grey, kernels)
    return gradients.pow(2).sum(dim=1, keepdim=True).sqrt()


def pearson(first: torch.Tensor, second: torch.Tensor) -> float:
    """r = Σ(a - ā)(b - b̄) / sqrt(Σ(a - ā)² Σ(b - b̄)²) over all elements; 0 when either is constant.

    A constant map (a flat picture) has no structure to agree with: 0 rather than an undefined 0/0.
    """
    a = first.flatten().double() - first.double().mean()
    b = second.flatten().double() - second.double().mean()
    denominator = (a.square().sum() * b.square().sum()).sqrt()
    if denominator <= 1e-12 * a.numel():
        return 0.0
    return float((a * b).sum() / denominator)


def content_fidelity(output: ImageLike, content: ImageLike, size: int = DEFAULT_SIZE) -> float:
    """How well the output keeps the content's edges: r(|∇Y_output|, |∇Y_content|) at `size` px.

    Y is the luminance, ∇ the Sobel gradient, r the Pearson correlation over pixels, both pictures at the
    content's shape with the long side `size` (antialiased). Why this: the magnitude of the gradient marks
    where edges are, whatever their colour or polarity, and correlation ignores how strong the edges are
    overall, so a style that raises or lowers contrast everywhere is not penalised; only edges that moved,
    vanished or were invented lower it. At 128 px fine brushwork has averaged away, so the score asks
    about the content's layout, not about the strokes. 1 for the content itself, about 0 for an
    unrelated picture, in [-1, 1].
    """
    output_grey, content_grey = matched_luminance(output, content, size)
    return pearson(sobel_magnitude(output_grey), sobel_magnitude(content_grey))


# ---------------------------------------------------------------------------- SSIM

def _gaussian_window(sigma: float = 1.5, radius: int = 5) -> torch.Tensor:
    """The 11×11 Gaussian window (σ = 1.5) of the SSIM paper, normalised to sum 1, shape (1, 1, 11, 11)."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    profile = torch.exp(-offsets.square() / (2 * sigma ** 2))
    profile = profile / profile.sum()
    return torch.outer(profile, profile).view(1, 1, 2 * radius + 1, 2 * radius + 1)


def ssim_map(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """SSIM = (2 μa μb + C1)(2 σab + C2) / ((μa² + μb² + C1)(σa² + σb² + C2)) per valid 11×11 window.

    μ, σ² and σab are Gaussian-weighted local means, variances and covariance; C1 = 0.01², C2 = 0.03² for
    values in [0, 1] (Wang, Bovik, Sheikh and Simoncelli 2004).
    """
    window = _gaussian_window().to(first)
    if min(first.shape[-2:]) < window.shape[-1]:
        raise GatysError(f"SSIM needs at least {window.shape[-1]} px on each side at the working size, "
                         f"got {first.shape[-2]}×{first.shape[-1]}; use a larger size")
    mean_a, mean_b = F.conv2d(first, window), F.conv2d(second, window)
    var_a = F.conv2d(first * first, window) - mean_a.square()
    var_b = F.conv2d(second * second, window) - mean_b.square()
    covariance = F.conv2d(first * second, window) - mean_a * mean_b
    return ((2 * mean_a * mean_b + _SSIM_C1) * (2 * covariance + _SSIM_C2)
            / ((mean_a.square() + mean_b.square() + _SSIM_C1) * (var_a + var_b + _SSIM_C2)))


def luminance_ssim(output: ImageLike, content: ImageLike, size: int = DEFAULT_SIZE) -> float:
    """The mean SSIM of the output's and the content's luminance at `size` px long side.

    A second score beside content_fidelity: SSIM compares local brightness, contrast and structure
    together, so it also drops when the style darkens or brightens regions (not invariant to a colour
    shift, unlike content_fidelity). 1 for the content itself; for stylised pictures typically far lower.
    """
    output_grey, content_grey = matched_luminance(output, content, size)
    return float(ssim_map(output_grey, content_grey).mean())
