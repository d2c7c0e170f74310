"""gatys.colour: YIQ conversions, luminance-only recombination, colour histogram matching."""
import numpy as np
import pytest
import torch

from gatys.colour import (HISTOGRAM_MODES, _colour_transform, combine_luminance, grey_to_rgb, luminance,
                          match_histogram, match_luminance, rgb_to_yiq, yiq_to_rgb)
from gatys.errors import GatysError


def _mean_cov(image: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Reference statistics in numpy float64: channel means and the biased covariance."""
    pixels = image.double().permute(1, 0, 2, 3).reshape(3, -1).numpy()
    return pixels.mean(axis=1), np.cov(pixels, bias=True)


def _mid_range(generator: torch.Generator, shape, mixing, offset, spread=0.4) -> torch.Tensor:
    """Correlated colours that stay well inside [0, 1], so clipping never interferes."""
    noise = torch.randn(shape[0], 3, *shape[1:], generator=generator, dtype=torch.float64)
    mixed = torch.einsum("ij,bjhw->bihw", torch.tensor(mixing, dtype=torch.float64), noise)
    return offset + spread * (mixed / 2).tanh() / 2


@pytest.fixture
def style_and_content():
    generator = torch.Generator().manual_seed(0)
    style = _mid_range(generator, (1, 20, 30), [[1, 0.5, 0], [0, 1, 0.3], [0.2, 0, 1]],
                       torch.tensor([0.6, 0.45, 0.3], dtype=torch.float64).view(1, 3, 1, 1))
    content = _mid_range(generator, (1, 16, 12), [[1, -0.4, 0.2], [0.1, 0.8, 0], [0, 0.3, 1.2]],
                         torch.tensor([0.4, 0.5, 0.55], dtype=torch.float64).view(1, 3, 1, 1))
    return style, content


def test_yiq_round_trip():
    rgb = torch.rand(2, 3, 5, 6, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(rgb)), rgb, atol=1e-6)
    yiq = rgb_to_yiq(rgb.double())
    assert torch.allclose(rgb_to_yiq(yiq_to_rgb(yiq)), yiq, atol=1e-12)


def test_yiq_of_grey_and_luminance():
    grey = torch.full((1, 3, 2, 2), 0.4)
    yiq = rgb_to_yiq(grey)
    assert torch.allclose(yiq[:, 0], torch.full((1, 2, 2), 0.4), atol=1e-6)
    assert torch.allclose(yiq[:, 1:], torch.zeros(1, 2, 2, 2), atol=1e-6)  # no chroma in grey
    rgb = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert luminance(rgb).shape == (1, 1, 1, 1)
    assert luminance(rgb).item() == pytest.approx(0.299)


def test_grey_to_rgb():
    grey = torch.rand(1, 1, 3, 4)
    rgb = grey_to_rgb(grey)
    assert rgb.shape == (1, 3, 3, 4) and rgb.is_contiguous()
    assert torch.equal(rgb[:, 2:], grey)
    assert torch.allclose(luminance(rgb), grey, atol=1e-6)


def test_shape_checked():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        rgb_to_yiq(torch.rand(3, 4, 4))


def test_combine_luminance_keeps_output_y_and_content_iq(style_and_content):
    _, content = style_and_content
    generator = torch.Generator().manual_seed(2)
    output_y = 0.35 + 0.3 * torch.rand(1, 1, 16, 12, generator=generator, dtype=torch.float64)
    combined = combine_luminance(grey_to_rgb(output_y), content)
    assert 0 < combined.min() and combined.max() < 1  # no clipping at these mid-range values
    combined_yiq, content_yiq = rgb_to_yiq(combined), rgb_to_yiq(content)
    assert torch.allclose(combined_yiq[:, :1], output_y, atol=1e-12)
    assert torch.allclose(combined_yiq[:, 1:], content_yiq[:, 1:], atol=1e-12)


def test_combine_luminance_float32_and_clipping():
    output = torch.ones(1, 3, 2, 2)
    content = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    combined = combine_luminance(output, content)
    assert combined.dtype == torch.float32
    assert 0 <= combined.min() and combined.max() <= 1


def test_combine_luminance_needs_same_shape():
    with pytest.raises(ValueError, match="same shape"):
        combine_luminance(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))


def test_match_luminance_gives_content_mean_and_std():
    generator = torch.Generator().manual_seed(3)
    style_y = 0.2 + 0.1 * torch.rand(1, 1, 20, 20, generator=generator, dtype=torch.float64)
    content_y = 0.5 + 0.3 * torch.rand(1, 1, 12, 9, generator=generator, dtype=torch.float64)
    matched = match_luminance(style_y, content_y)
    assert matched.shape == style_y.shape
    assert matched.mean().item() == pytest.approx(content_y.mean().item(), abs=1e-10)
    assert matched.std(correction=0).item() == pytest.approx(content_y.std(correction=0).item(), abs=1e-10)
    shifted = match_luminance(style_y, content_y, match_std=False)
    assert shifted.mean().item() == pytest.approx(content_y.mean().item(), abs=1e-10)
    assert shifted.std().item() == pytest.approx(style_y.std().item(), abs=1e-10)


def test_match_luminance_flat_style_and_clipping():
    flat = match_luminance(torch.full((1, 1, 3, 3), 0.9), torch.tensor([0.2, 0.4]).view(1, 1, 1, 2))
    assert torch.allclose(flat, torch.full((1, 1, 3, 3), 0.3))
    wide = match_luminance(torch.rand(1, 1, 8, 8), torch.tensor([0.0, 1.0]).view(1, 1, 1, 2))
    assert 0 <= wide.min() and wide.max() <= 1


@pytest.mark.parametrize("mode", HISTOGRAM_MODES)
def test_match_histogram_moves_style_statistics_to_content(style_and_content, mode):
    style, content = style_and_content
    matched = match_histogram(style, content, mode=mode)
    assert matched.shape == style.shape and matched.dtype == style.dtype
    assert 0 < matched.min() and matched.max() < 1  # clipping played no part
    matched_mean, matched_cov = _mean_cov(matched)
    content_mean, content_cov = _mean_cov(content)
    np.testing.assert_allclose(matched_mean, content_mean, atol=1e-10)
    np.testing.assert_allclose(matched_cov, content_cov, atol=2e-5)  # eps shifts it by ~1e-5


@pytest.mark.parametrize("mode", HISTOGRAM_MODES)
def test_match_histogram_exact_without_eps(style_and_content, mode):
    style, content = style_and_content
    matched = match_histogram(style, content, mode=mode, eps=0.0)
    np.testing.assert_allclose(_mean_cov(matched)[1], _mean_cov(content)[1], atol=1e-10)


def test_transforms_satisfy_the_constraint_and_differ():
    generator = torch.Generator().manual_seed(4)
    root_s, root_c = (torch.randn(3, 3, generator=generator, dtype=torch.float64) for _ in range(2))
    style_cov, content_cov = root_s @ root_s.T + 0.1 * torch.eye(3), root_c @ root_c.T + 0.1 * torch.eye(3)
    transforms = {mode: _colour_transform(style_cov, content_cov, mode) for mode in HISTOGRAM_MODES}
    for transform in transforms.values():
        assert torch.allclose(transform @ style_cov @ transform.T, content_cov, atol=1e-10)
    assert torch.allclose(transforms["sym"], transforms["sym"].T, atol=1e-10)  # the OT map is symmetric
    assert torch.linalg.eigvalsh(transforms["sym"]).min() > 0
    assert not torch.allclose(transforms["pca"], transforms["chol"])


def test_match_histogram_float32_and_identity(style_and_content):
    style, _ = style_and_content
    same = match_histogram(style.float(), style.float())
    assert same.dtype == torch.float32
    assert torch.allclose(same, style.float(), atol=1e-5)


def test_match_histogram_unknown_mode(style_and_content):
    style, content = style_and_content
    with pytest.raises(GatysError, match="pca, chol, sym"):
        match_histogram(style, content, mode="lab")
