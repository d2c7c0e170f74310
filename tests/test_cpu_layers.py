"""The CPU fast paths of the network against plain autograd: fused conv + ReLU (+ max-pool), 2×2 max-pool (gatys/fast/cpu_layers.py)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import requires_cpu_bf16
from gatys.fast import cpu_layers
from gatys.fast.cpu_layers import PACKED_SHAPES, conv_relu, conv_relu_pool, fusable, max_pool_2x2


# bf16 cases convolve through oneDNN, which runs bf16 on some CPUs only
BF16 = pytest.param(torch.bfloat16, marks=requires_cpu_bf16)
BF16_WITH_TOLERANCE = pytest.param(torch.bfloat16, 2e-2, marks=requires_cpu_bf16)


def _conv(in_channels: int, out_channels: int, dtype: torch.dtype) -> nn.Conv2d:
    torch.manual_seed(0)
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1).to(dtype).requires_grad_(False)
    return conv.to(memory_format=torch.channels_last)


def _input(channels: int, dtype: torch.dtype) -> torch.Tensor:
    x = torch.randn(2, channels, 9, 13, dtype=torch.float64).to(dtype)
    return x.contiguous(memory_format=torch.channels_last).requires_grad_()


def test_gradcheck_in_float64():
    conv = _conv(3, 5, torch.float64)
    x = _input(3, torch.float64)
    assert torch.autograd.gradcheck(lambda t: conv_relu(conv, t), (x,))


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), BF16_WITH_TOLERANCE])
def test_value_and_gradient_match_autograd(dtype, tolerance):
    conv = _conv(8, 16, dtype)
    x = _input(8, dtype)
    upstream = torch.randn(2, 16, 9, 13).to(dtype)
    fused = conv_relu(conv, x)
    (fused_grad,) = torch.autograd.grad(fused, x, upstream)
    reference = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1))
    (reference_grad,) = torch.autograd.grad(reference, x, upstream)
    assert fused.dtype == dtype and fused_grad.dtype == dtype
    assert fused.is_contiguous(memory_format=torch.channels_last)
    scale = reference.abs().max().item()
    torch.testing.assert_close(fused.float(), reference.float(), rtol=0, atol=tolerance * scale)
    scale = reference_grad.abs().max().item()
    torch.testing.assert_close(fused_grad.float(), reference_grad.float(), rtol=0, atol=tolerance * scale)


def test_conv_relu_pool_gradcheck_in_float64():
    conv = _conv(3, 5, torch.float64)
    x = _input(3, torch.float64)
    assert torch.autograd.gradcheck(lambda t: conv_relu_pool(conv, t), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, BF16])
def test_conv_relu_pool_is_exactly_conv_relu_then_pool(dtype):
    """Masking the pooled gradient gives the gradient of masking the full map, bit for bit (odd sizes: the
    last row is outside every window), with ReLU zeros inside windows, whole windows of zeros included."""
    conv = _conv(8, 16, dtype)
    with torch.no_grad():
        conv.bias[:4] = -10.0  # channels that are zero everywhere after the ReLU
    x = _input(8, dtype)
    upstream = torch.randn(2, 16, 4, 6).to(dtype).contiguous(memory_format=torch.channels_last)
    fused = conv_relu_pool(conv, x)
    (fused_grad,) = torch.autograd.grad(fused, x, upstream)
    separate = max_pool_2x2(conv_relu(conv, x))
    (separate_grad,) = torch.autograd.grad(separate, x, upstream)
    assert fused.shape == (2, 16, 4, 6) and (fused[:, :4] == 0).all() and (fused[:, 4:] > 0).any()
    assert torch.equal(fused, separate) and torch.equal(fused_grad, separate_grad)
    reference = F.max_pool2d(F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1)), 2, 2)
    (reference_grad,) = torch.autograd.grad(reference, x, upstream)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(fused_grad.float(), reference_grad.float(), rtol=0,
                               atol=tolerance * reference_grad.abs().max().item())


@pytest.mark.parametrize("fused", [conv_relu, conv_relu_pool])
def test_pass_input_gradcheck_in_float64(fused):
    conv = _conv(3, 5, torch.float64)
    x = _input(3, torch.float64)
    assert torch.autograd.gradcheck(lambda t: fused(conv, t, True), (x,))


def _plain(conv: nn.Conv2d, x: torch.Tensor, pooled: bool) -> torch.Tensor:
    y = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1))
    return F.max_pool2d(y, 2, 2) if pooled else y


@pytest.mark.parametrize("fused, pooled", [(conv_relu, False), (conv_relu_pool, True)])
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), BF16_WITH_TOLERANCE])
@pytest.mark.parametrize("passed_layout", [torch.channels_last, torch.contiguous_format])
def test_pass_input_returns_x_and_adds_its_gradient(fused, pooled, dtype, tolerance, passed_layout):
    """x passed through: the same values, and the gradient of a loss on both outputs is what autograd
    gives for x used twice; in the input's layout the sum is fused into the conv, in another it is added."""
    conv = _conv(8, 16, dtype)
    x = _input(8, dtype)
    y, passed = fused(conv, x, True)
    assert torch.equal(passed, x) and torch.equal(y, fused(conv, x))
    upstream = torch.randn_like(y, dtype=torch.float64).to(dtype)
    passed_upstream = torch.randn(x.shape, dtype=torch.float64).to(dtype).contiguous(memory_format=passed_layout)
    (grad,) = torch.autograd.grad((y, passed), x, (upstream, passed_upstream))
    (reference,) = torch.autograd.grad((_plain(conv, x, pooled), x * 1), x, (upstream, passed_upstream))
    torch.testing.assert_close(grad.float(), reference.float(), rtol=0, atol=tolerance * reference.abs().max().item())


@pytest.mark.parametrize("fused, pooled", [(conv_relu, False), (conv_relu_pool, True)])
def test_pass_input_with_a_gradient_for_one_output_only(fused, pooled):
    conv = _conv(8, 16, torch.float32)
    x = _input(8, torch.float32)
    y, passed = fused(conv, x, True)
    (only_passed,) = torch.autograd.grad(passed.square().sum(), x)
    torch.testing.assert_close(only_passed, 2 * x.detach())
    y, passed = fused(conv, x, True)
    (only_y,) = torch.autograd.grad(y.square().sum(), x)
    (reference,) = torch.autograd.grad(_plain(conv, x, pooled).square().sum(), x)
    torch.testing.assert_close(only_y, reference, rtol=0, atol=1e-5 * reference.abs().max().item())


def test_transposed_weight_follows_weight_changes():
    conv = _conv(4, 6, torch.float32)
    x = _input(4, torch.float32)
    upstream = torch.ones(2, 6, 9, 13)
    torch.autograd.grad(conv_relu(conv, x), x, upstream)
    with torch.no_grad():
        conv.weight.mul_(-1)
    (fused_grad,) = torch.autograd.grad(conv_relu(conv, x), x, upstream)
    (reference_grad,) = torch.autograd.grad(F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1)), x, upstream)
    torch.testing.assert_close(fused_grad, reference_grad, rtol=1e-5, atol=1e-5)


def test_first_call_in_inference_mode_does_not_poison_autograd():
    conv = _conv(3, 4, torch.float32)
    with torch.inference_mode():
        conv_relu(conv, torch.rand(1, 3, 8, 8))
    x = _input(3, torch.float32)
    conv_relu(conv, x).sum().backward()
    assert x.grad is not None


def test_only_frozen_3x3_convs_on_the_cpu_are_fused():
    x = torch.rand(1, 3, 8, 8)
    assert fusable(_conv(3, 4, torch.float32), x)
    assert not fusable(_conv(3, 4, torch.float32).requires_grad_(True), x)
    assert not fusable(nn.Conv2d(3, 4, 1).requires_grad_(False), x)
    assert not fusable(nn.Conv2d(3, 4, 3, padding=1, stride=2).requires_grad_(False), x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_max_pool_matches_torch_on_odd_sizes(dtype, layout):
    x = torch.randn(2, 5, 9, 12, dtype=torch.float64).to(dtype).contiguous(memory_format=layout).requires_grad_()
    upstream = torch.randn(2, 5, 4, 6).to(dtype).contiguous(memory_format=layout)
    pooled = max_pool_2x2(x)
    (grad,) = torch.autograd.grad(pooled, x, upstream)
    reference = F.max_pool2d(x, 2, 2)
    (reference_grad,) = torch.autograd.grad(reference, x, upstream)
    assert torch.equal(pooled, reference) and torch.equal(grad, reference_grad)
    assert grad.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("dtype", [torch.float32, BF16])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_pool_gradients_through_float32_are_the_same_bits(monkeypatch, dtype, layout):
    """Where torch has no max_unpool2d kernel for a dtype (torch 2.4: bfloat16), the pools' backward
    scatters in float32: the same gradient, bit for bit, in the same memory format."""
    conv = _conv(5, 5, dtype)
    x = torch.randn(2, 5, 9, 12, dtype=torch.float64).to(dtype).contiguous(memory_format=layout).requires_grad_()
    upstream = torch.randn(2, 5, 4, 6).to(dtype).contiguous(memory_format=layout)

    def gradients():
        return [torch.autograd.grad(pool(x), x, upstream)[0] for pool in (max_pool_2x2, lambda image: conv_relu_pool(conv, image))]

    native = gradients()
    monkeypatch.setattr(cpu_layers, "_unpool_runs_in", lambda dtype: False)
    through_float32 = gradients()
    for got, expected in zip(through_float32, native):
        assert got.dtype == dtype and torch.equal(got, expected) and got.stride() == expected.stride()


def test_max_pool_gradcheck():
    x = torch.randn(1, 3, 7, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(max_pool_2x2, (x,))



def test_packed_weights_are_kept_for_the_last_few_shapes_only():
    conv = _conv(4, 6, torch.float32)
    for size in (8, 9, 10, 11):
        x = torch.rand(1, 4, size, size).contiguous(memory_format=torch.channels_last).requires_grad_()
        torch.testing.assert_close(conv_relu(conv, x), F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1)),
                                   rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # targets: dense weights, nothing packed for a shape used once
        conv_relu(conv, torch.rand(1, 4, 12, 12))
    shapes = list(conv._cpu_weights[1])
    assert len(shapes) <= PACKED_SHAPES + 1 and (1, 4, 12, 12) not in shapes


@pytest.mark.parametrize("fused, pooled", [(conv_relu, False), (conv_relu_pool, True)])
def test_deep_float32_layers_run_winograd_with_the_float64_value_and_gradient(fused, pooled):
    """128 → 256 channels on 30 blocks of 4×4: Winograd (gatys/fast/winograd.py) forward and backward, with
    a passed-through input; within 1e-4 of float64 (a wrong step would be off by order 1)."""
    conv = _conv(128, 256, torch.float32)
    x = torch.randn(1, 128, 20, 23).contiguous(memory_format=torch.channels_last).requires_grad_()
    y, passed = fused(conv, x, True)
    assert "winograd" in conv._cpu_weights[1]
    upstream, passed_upstream = torch.randn_like(y), torch.randn_like(x)
    (grad,) = torch.autograd.grad((y, passed), x, (upstream, passed_upstream))
    x64, conv64 = x.detach().double().requires_grad_(), _conv(128, 256, torch.float64)
    reference = _plain(conv64, x64, pooled)
    (reference_grad,) = torch.autograd.grad((reference, x64 * 1), x64, (upstream.double(), passed_upstream.double()))
    for actual, expected in ((y, reference), (grad, reference_grad)):
        torch.testing.assert_close(actual.double(), expected.detach(), rtol=0, atol=1e-4 * expected.abs().max().item())


@requires_cpu_bf16
def test_winograd_is_for_float32_only():
    """A bf16 image at a shape where Winograd would pay in float32 gets oneDNN's packed weights instead."""
    conv = _conv(128, 256, torch.bfloat16)
    conv_relu(conv, torch.randn(1, 128, 20, 23).to(torch.bfloat16).requires_grad_())
    assert "winograd" not in conv._cpu_weights[1]


def test_winograd_is_for_one_image_only():
    conv = _conv(128, 256, torch.float32)
    x = torch.randn(2, 128, 20, 23).contiguous(memory_format=torch.channels_last).requires_grad_()
    reference = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1))
    torch.testing.assert_close(conv_relu(conv, x), reference, rtol=0, atol=1e-5 * reference.abs().max().item())
    assert "winograd" not in conv._cpu_weights[1]
