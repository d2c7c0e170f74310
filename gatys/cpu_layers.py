"""The network's layers on the CPU fast path: conv + ReLU fused, and a 2×2 max-pool.

    y = relu(conv(x, W) + b),   ∂L/∂x = conv(∂L/∂y ⊙ [y > 0], W̃),   W̃ = W with in/out swapped, flipped 3×3

The forward runs oneDNN's convolution with the ReLU as a post-op, so the ReLU costs no
pass of its own; the backward computes the input gradient as a forward convolution
with W̃, which oneDNN runs faster than its backward-data convolution for the deep
512-channel layers. Weights get no gradient: the network's never require one. The
max-pool's backward scatters with max_unpool2d, which is the same operation for
non-overlapping windows and about twice as fast as torch's pool backward on CPU.
Measured in docs/performance.md.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_FUSED = getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() else None


def fusable(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether conv_relu applies: a CPU tensor, weights without gradients, 3×3 padding 1 stride 1."""
    return (x.device.type == "cpu" and not conv.weight.requires_grad and conv.kernel_size == (3, 3)
            and conv.padding == (1, 1) and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1)


def conv_relu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """relu(conv(x)) with a fused forward and a forward-conv backward (see the module docstring)."""
    return _ConvReLU.apply(x, conv.weight, conv.bias, _flipped_transpose(conv))


def _flipped_transpose(conv: nn.Conv2d) -> torch.Tensor:
    """W̃ for the input gradient in the weight's memory layout, cached on the module until the weight changes."""
    weight = conv.weight
    layout = torch.channels_last if weight.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    key = (weight.data_ptr(), weight._version, weight.dtype, weight.device, layout)
    cached = getattr(conv, "_flipped_transpose", None)
    if cached is None or cached[0] != key:
        with torch.inference_mode(False):  # a normal tensor, usable by autograd after an inference-mode first call
            flipped = weight.detach().transpose(0, 1).flip(2, 3).contiguous(memory_format=layout)
        cached = (key, flipped)
        conv._flipped_transpose = cached
    return cached[1]


def _relu_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if _FUSED is not None and x.dtype in (torch.float32, torch.bfloat16):
        return _FUSED(x, weight, bias, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
    return F.conv2d(x, weight, bias, padding=1).relu_()


class _ConvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, flipped):
        y = _relu_conv(x, weight, bias)
        ctx.save_for_backward(y, flipped)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        y, flipped = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        masked = torch.ops.aten.threshold_backward(grad, y, 0)
        return F.conv2d(masked, flipped, padding=1), None, None, None


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """max_pool2d(x, 2, 2) whose backward scatters with max_unpool2d, 2× faster on CPU than
    torch's pool backward for channels_last maps; the same values (windows do not overlap)."""
    return _MaxPool2x2.apply(x)


class _MaxPool2x2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        pooled, indices = torch.ops.aten.max_pool2d_with_indices(x, [2, 2], [2, 2])
        ctx.save_for_backward(indices)
        ctx.size = x.shape[-2:]
        return pooled

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return F.max_unpool2d(grad, indices, 2, 2, output_size=ctx.size)
