"""gram_matrix's custom autograd against float64 references, in every layout and dtype the engine feeds it."""
from __future__ import annotations

import pytest
import torch

from losses.functional import gram_matrix

LAYOUTS = [torch.contiguous_format, torch.channels_last]


def _features(dtype: torch.dtype, layout: torch.memory_format) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    feats = torch.randn(2, 6, 7, 9, generator=generator, dtype=torch.float64).relu().to(dtype)
    return feats.contiguous(memory_format=layout).requires_grad_()


def _products_setting():
    return getattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision", None)


def _reference(feats: torch.Tensor) -> torch.Tensor:
    flat = feats.detach().double().flatten(2).requires_grad_()
    return flat, flat @ flat.transpose(1, 2) / flat.shape[2]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gradcheck_in_float64(layout):
    assert torch.autograd.gradcheck(gram_matrix, (_features(torch.float64, layout),))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_bf16_features_accumulate_in_float32_and_return_a_bf16_gradient(layout):
    feats = _features(torch.bfloat16, layout)
    precision = _products_setting()
    upstream = torch.randn(2, 6, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    gram = gram_matrix(feats)
    (grad,) = torch.autograd.grad(gram, feats, upstream.float())
    flat, reference = _reference(feats)
    (reference_grad,) = torch.autograd.grad(reference, flat, upstream)
    assert gram.dtype == torch.float32
    assert _products_setting() == precision  # the fast-products switch is restored
    # bf16 × bf16 products are exact in float32: only float32 summation error remains.
    torch.testing.assert_close(gram.double(), reference.detach(), rtol=1e-6, atol=1e-6)
    assert grad.dtype == torch.bfloat16 and grad.shape == feats.shape
    assert grad.is_contiguous(memory_format=layout)
    scale = reference_grad.abs().max().item()
    torch.testing.assert_close(grad.double().flatten(2), reference_grad, rtol=0, atol=1e-2 * scale)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_float32_matches_float64(layout):
    feats = _features(torch.float32, layout)
    gram = gram_matrix(feats)
    (grad,) = torch.autograd.grad(gram.sum(), feats)
    flat, reference = _reference(feats)
    (reference_grad,) = torch.autograd.grad(reference.sum(), flat)
    torch.testing.assert_close(gram.double(), reference.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad.double().flatten(2), reference_grad, rtol=1e-6, atol=1e-6)
