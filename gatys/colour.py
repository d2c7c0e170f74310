"""Colour control for style transfer (Gatys et al. 2017, "Controlling Perceptual Factors").

Two ways to keep the content image's colours (losses-spec.md §7.1–7.2):
  luminance-only transfer  run the transfer on luminance (Y of YIQ) images replicated to three
                           channels, then put the result's Y together with the content's I and Q
                           (`luminance`, `match_luminance`, `grey_to_rgb`, `combine_luminance`);
  histogram matching       map the style image's pixels by the affine transform that gives them
                           the content's colour mean and covariance, then transfer as usual
                           (`match_histogram`).
Images are (B, 3, H, W) RGB tensors in [0, 1]; the arithmetic runs in float64 and the result
comes back in the input's dtype. Depends on torch only.
"""
from __future__ import annotations

import torch

from .errors import GatysError

# FCC NTSC RGB → YIQ; the inverse is computed, so the round trip is exact to float64 rounding.
RGB_TO_YIQ = torch.tensor([
    [0.299, 0.587, 0.114],
    [0.59590059, -0.27455667, -0.32134392],
    [0.21153661, -0.52273617, 0.31119955],
], dtype=torch.float64)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)

HISTOGRAM_MODES = ("pca", "chol", "sym")
COVARIANCE_EPS = 1e-5


def _check_image(image: torch.Tensor, name: str, channels: int | None = 3) -> None:
    """Boundary check: a 4-D (B, C, H, W) tensor, with `channels` channels when given."""
    if image.dim() != 4 or (channels is not None and image.shape[1] != channels):
        expected = f"(B, {channels}, H, W)" if channels is not None else "(B, C, H, W)"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(image.shape)}")


def _apply_matrix(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Multiply every pixel's channel vector by `matrix`, in float64; the result in image's dtype."""
    matrix = matrix.to(image.device)
    mixed = torch.einsum("ij,bjhw->bihw", matrix, image.to(torch.float64))
    return mixed.to(image.dtype).contiguous()


def rgb_to_yiq(rgb: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) → YIQ (B, 3, H, W): Y luminance in [0, 1], I and Q chrominance."""
    _check_image(rgb, "rgb")
    return _apply_matrix(RGB_TO_YIQ, rgb)


def yiq_to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    """YIQ (B, 3, H, W) → RGB (B, 3, H, W), the exact inverse of `rgb_to_yiq` (not clipped)."""
    _check_image(yiq, "yiq")
    return _apply_matrix(YIQ_TO_RGB, yiq)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """The Y channel, (B, 1, H, W): Y = 0.299 R + 0.587 G + 0.114 B."""
    _check_image(rgb, "rgb")
    return _apply_matrix(RGB_TO_YIQ[:1], rgb)


def grey_to_rgb(grey: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) → (B, 3, H, W) by replication, the form VGG takes for luminance-only transfer."""
    _check_image(grey, "grey", channels=1)
    return grey.expand(-1, 3, -1, -1).contiguous()


def match_luminance(style_y: torch.Tensor, content_y: torch.Tensor,
                    match_std: bool = True) -> torch.Tensor:
    """Give the style luminance the content's mean (and std), clipped to [0, 1].

    L_s' = (σ_c/σ_s)(L_s − μ_s) + μ_c, statistics over all pixels of each tensor (the paper's
    rule, for styles whose luminance histogram differs strongly from the content's). With
    `match_std=False` only the mean is shifted, as the reference notebook does. A flat style
    (σ_s = 0) becomes flat at μ_c. Shapes (B, 1, H, W); style and content sizes may differ.
    """
    _check_image(style_y, "style_y", channels=None)
    _check_image(content_y, "content_y", channels=None)
    style, content = style_y.to(torch.float64), content_y.to(torch.float64)
    centred = style - style.mean()
    if match_std:
        centred = centred * (content.std(correction=0) / style.std(correction=0).clamp_min(1e-12))
    return (centred + content.mean()).clamp(0.0, 1.0).to(style_y.dtype).contiguous()


def combine_luminance(output_rgb: torch.Tensor, content_rgb: torch.Tensor) -> torch.Tensor:
    """The output's luminance with the content's chrominance: YIQ(Y_out, I_c, Q_c) → RGB in [0, 1].

    The output of a luminance-only transfer is grey (R = G = B = Y), so its Y is its value.
    Both images must have the same shape (resize the content to the output first).
    """
    _check_image(output_rgb, "output_rgb")
    _check_image(content_rgb, "content_rgb")
    if output_rgb.shape != content_rgb.shape:
        raise ValueError(f"output {tuple(output_rgb.shape)} and content {tuple(content_rgb.shape)} "
                         "must have the same shape")
    yiq = torch.cat([luminance(output_rgb.to(torch.float64)),
                     rgb_to_yiq(content_rgb.to(torch.float64))[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0.0, 1.0).to(output_rgb.dtype).contiguous()


def match_histogram(style_rgb: torch.Tensor, content_rgb: torch.Tensor,
                    mode: str = "pca", eps: float = COVARIANCE_EPS) -> torch.Tensor:
    """Map the style's colours to the content's mean and covariance: x' = A(x − μ_s) + μ_c.

    A satisfies A Σ_s Aᵀ = Σ_c (biased covariances, `eps` added to both diagonals):
      pca   A = Σ_c^½ Σ_s^-½                               (default, the paper's notebooks)
      chol  A = L_c L_s⁻¹, Cholesky factors
      sym   A = Σ_s^-½ (Σ_s^½ Σ_c Σ_s^½)^½ Σ_s^-½           (the Gaussian optimal-transport map)
    All pixels of each tensor (the whole batch) form one distribution; style and content may
    differ in size. The result has the style's shape, clipped to [0, 1].
    """
    _check_image(style_rgb, "style_rgb")
    _check_image(content_rgb, "content_rgb")
    if mode not in HISTOGRAM_MODES:
        raise GatysError(f"unknown colour histogram mode {mode!r}; use one of {', '.join(HISTOGRAM_MODES)}")
    style_pixels, content_pixels = _pixels(style_rgb), _pixels(content_rgb)
    style_mean, style_cov = _mean_cov(style_pixels, eps)
    content_mean, content_cov = _mean_cov(content_pixels, eps)
    transform = _colour_transform(style_cov, content_cov, mode)
    mapped = transform @ (style_pixels - style_mean) + content_mean
    batch, _, height, width = style_rgb.shape
    image = mapped.reshape(3, batch, height, width).permute(1, 0, 2, 3)
    return image.clamp(0.0, 1.0).to(style_rgb.dtype).contiguous()


def _pixels(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) → (3, B·H·W) in float64: one column per pixel."""
    return rgb.to(torch.float64).permute(1, 0, 2, 3).reshape(3, -1)


def _mean_cov(pixels: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean (3, 1) and biased covariance (3, 3) with `eps` on the diagonal."""
    mean = pixels.mean(dim=1, keepdim=True)
    centred = pixels - mean
    covariance = centred @ centred.T / pixels.shape[1]
    return mean, covariance + eps * torch.eye(3, dtype=pixels.dtype, device=pixels.device)


def _colour_transform(style_cov: torch.Tensor, content_cov: torch.Tensor, mode: str) -> torch.Tensor:
    """The 3×3 matrix A with A Σ_s Aᵀ = Σ_c for the chosen mode."""
    if mode == "chol":
        return torch.linalg.cholesky(content_cov) @ torch.linalg.inv(torch.linalg.cholesky(style_cov))
    style_root, style_inverse_root = _sqrtm(style_cov), _sqrtm(style_cov, power=-0.5)
    if mode == "pca":
        return _sqrtm(content_cov) @ style_inverse_root
    middle = _sqrtm(style_root @ content_cov @ style_root)
    return style_inverse_root @ middle @ style_inverse_root


def _sqrtm(matrix: torch.Tensor, power: float = 0.5) -> torch.Tensor:
    """Symmetric matrix power (½ or −½) of a symmetric positive-definite matrix, by eigh."""
    matrix = (matrix + matrix.T) / 2  # remove rounding asymmetry before eigh
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return eigenvectors @ torch.diag(eigenvalues.clamp_min(0).pow(power)) @ eigenvectors.T
