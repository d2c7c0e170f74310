"""Winograd F(4×4, 3×3) convolution (gatys/fast/winograd.py) against float64 direct convolution."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gatys.fast import winograd
from gatys.fast.winograd import WinogradWeights, transform_matrices

# float32 Winograd differs from the exact convolution by ~1e-5 of the output's largest value
# (measured up to 1.5e-5 with 512 channels); a wrong transform constant gives errors of order 1.
TOLERANCE = 1e-4


def test_one_dimensional_transforms_compute_a_correlation_exactly():
    """Aᵀ[(G g) ⊙ (Bᵀ d)] is the 4-output valid correlation of a 6-sample d with a 3-tap g."""
    bt, g_matrix, at = transform_matrices()
    torch.manual_seed(0)
    for _ in range(5):
        d, g = torch.randn(6, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
        expected = torch.stack([d[i:i + 3] @ g for i in range(4)])
        torch.testing.assert_close(at @ ((g_matrix @ g) * (bt @ d)), expected, rtol=0, atol=1e-12)


def _case(c_in: int, c_out: int, height: int, width: int, layout: torch.memory_format):
    torch.manual_seed(0)
    x = torch.randn(1, c_in, height, width).contiguous(memory_format=layout)
    weight = torch.randn(c_out, c_in, 3, 3) / (9 * c_in) ** 0.5
    bias = torch.randn(c_out)
    return x, weight, bias


def _close(actual: torch.Tensor, reference: torch.Tensor) -> None:
    torch.testing.assert_close(actual.double(), reference, rtol=0, atol=TOLERANCE * reference.abs().max().item())


@pytest.mark.parametrize("c_in, c_out, height, width", [(5, 7, 9, 11), (8, 3, 4, 4), (3, 4, 1, 2), (16, 12, 13, 8),
                                                        (64, 32, 17, 21)])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_matches_the_direct_convolution_in_float64(c_in, c_out, height, width, layout):
    """With bias and ReLU, plus a tensor, and plain; sizes that are and are not whole 4×4 blocks."""
    x, weight, bias = _case(c_in, c_out, height, width, layout)
    add = torch.randn(1, c_out, height, width).contiguous(memory_format=layout)
    transformed = WinogradWeights(weight)
    direct = F.conv2d(x.double(), weight.double(), padding=1)
    outputs = {
        "bias, relu": (transformed.conv(x, bias, relu=True), (direct + bias.double().view(1, -1, 1, 1)).relu()),
        "add": (transformed.conv(x, add=add), direct + add.double()),
        "plain": (transformed.conv(x), direct),
    }
    for actual, reference in outputs.values():
        assert actual.dtype == torch.float32 and actual.is_contiguous(memory_format=layout)
        _close(actual, reference)


def test_transformed_weights_are_four_times_the_weights():
    transformed = WinogradWeights(torch.randn(6, 5, 3, 3))
    assert transformed.u.shape == (36, 5, 6) and transformed.u.dtype == torch.float32


def test_a_batch_is_refused():
    with pytest.raises(ValueError, match="one image at a time"):
        WinogradWeights(torch.randn(6, 5, 3, 3)).conv(torch.randn(2, 5, 8, 8))


def test_pays_for_deep_layers_on_maps_of_enough_blocks():
    assert winograd.pays(256, 256, 42, 64) and winograd.pays(128, 256, 24, 16)
    assert not winograd.pays(128, 128, 85, 128)   # the transforms cost what the products save
    assert not winograd.pays(512, 512, 10, 16)    # 12 blocks: reading U costs what the products save
