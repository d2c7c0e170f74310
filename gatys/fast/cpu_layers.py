"""The network's layers on the CPU fast path: conv + ReLU (+ a max-pool after it) fused, and a 2×2 max-pool.

    y = relu(conv(x, W) + b),   ∂L/∂x = conv(∂L/∂y ⊙ [y > 0], W̃),   W̃ = W with in/out swapped, flipped 3×3

The forward runs oneDNN's convolution with the ReLU as a post-op, so the ReLU costs no
pass of its own; the backward computes the input gradient as a forward convolution
with W̃, which oneDNN runs faster than its backward-data convolution for the deep
512-channel layers. W and W̃ are packed once per input shape into oneDNN's own weight
layout, which it would otherwise redo at every call. Weights get no gradient: the
network's never require one. The max-pool's backward scatters with max_unpool2d, the
same operation for non-overlapping windows and about twice as fast as torch's pool
backward on CPU. Followed by a max-pool, the ReLU's mask is applied to the pooled
gradient, a quarter of the map. A conv whose input the network also returns (a style or
content layer) can pass that input through, so the losses' gradient for it is added
inside the conv's backward call rather than by autograd in a pass of its own. Measured
in docs/performance.md.
"""
from __future__ import annotations

import functools
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from . import winograd
from .winograd import WinogradWeights

_FUSED = getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() else None
_PACK = getattr(torch._C._nn, "mkldnn_reorder_conv2d_weight", None) if _FUSED is not None else None
_ONEDNN_DTYPES = (torch.float32, torch.bfloat16)
PACKED_SHAPES = 2  # input shapes whose packed weights each conv keeps (a run optimises at one shape per scale)


def fusable(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether conv_relu applies: a CPU tensor, weights without gradients, 3×3 padding 1 stride 1."""
    return (x.device.type == "cpu" and not conv.weight.requires_grad and conv.kernel_size == (3, 3)
            and conv.padding == (1, 1) and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1)


def conv_relu(conv: nn.Conv2d, x: torch.Tensor, pass_input: bool = False):
    """relu(conv(x)) with a fused forward and a forward-conv backward (see the module docstring).

    pass_input=True returns (relu(conv(x)), x'), x' being x itself for other consumers: their
    gradient then arrives here and is added to conv's input gradient inside the same oneDNN
    call, instead of autograd adding the two in a pass of its own (see conv3x3).
    """
    return _ConvReLU.apply(x, conv.bias, _weights(conv, x), False, pass_input)


def conv_relu_pool(conv: nn.Conv2d, x: torch.Tensor, pass_input: bool = False):
    """max_pool2d(relu(conv(x)), 2, 2) with the ReLU's mask applied to the pooled gradient;
    pass_input as for conv_relu.

    A window's maximum is positive exactly where the ReLU passed its argmax, so masking
    the pooled gradient by pooled > 0 before the scatter gives the same gradient as masking
    the full map after it, with a quarter of the elements, and the full map is not kept.
    """
    return _ConvReLU.apply(x, conv.bias, _weights(conv, x), True, pass_input)


def _weights(conv: nn.Conv2d, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, W̃) for an input shaped like x, cached on the module until the weight changes.

    For an input that will be differentiated (the image being optimised, evaluated
    hundreds of times at one shape) both are packed into oneDNN's blocked layout for that
    shape, which oneDNN would otherwise redo at every call; the last PACKED_SHAPES shapes
    are kept. In float32, for one image where Winograd pays, the pair is Winograd-transformed
    instead (for any such shape). Other calls (targets, float64, no oneDNN) use the dense weights.
    """
    weight = conv.weight
    version = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
    cache = getattr(conv, "_cpu_weights", None)
    if cache is None or cache[0] != version:
        cache = conv._cpu_weights = (version, OrderedDict())
    entries = cache[1]
    packable = _PACK is not None and x.requires_grad and x.dtype == weight.dtype and x.dtype in _ONEDNN_DTYPES
    transformed = (packable and x.dtype == torch.float32 and x.shape[0] == 1
                   and winograd.pays(*weight.shape[1::-1], *x.shape[2:]))
    key = "winograd" if transformed else tuple(x.shape) if packable else None
    if key in entries:
        entries.move_to_end(key)
        return entries[key]
    with torch.inference_mode(False):  # normal tensors, usable by autograd after an inference-mode first call
        dense = weight.detach()
        flipped = dense.transpose(0, 1).flip(2, 3)
        if transformed:
            entries[key] = (WinogradWeights(dense), WinogradWeights(flipped))
        elif packable:
            entries[key] = (pack_weight(dense, key), pack_weight(flipped, (key[0], dense.shape[0], *key[2:])))
        else:
            layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else None
            entries[key] = (dense, flipped.contiguous(memory_format=layout or torch.contiguous_format))
    while len(entries) > PACKED_SHAPES + 1:  # + the dense pair
        entries.popitem(last=False)
    return entries[key]


def pack_weight(weight: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
    """W in oneDNN's own layout for inputs of this shape (packed once, not at every call)."""
    return _PACK(weight.contiguous().to_mkldnn(), [1, 1], [1, 1], [1, 1], 1, list(input_shape))


def conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, relu: bool = False,
            add: torch.Tensor | None = None) -> torch.Tensor:
    """conv(x, W), with its ReLU or plus `add`, by oneDNN where it runs this dtype, by torch otherwise.

    `add` is summed into the output as oneDNN's binary post-op where it has the output's
    dtype and layout, so the sum costs no pass over memory of its own.
    """
    if isinstance(weight, WinogradWeights):
        return weight.conv(x, bias, relu=relu, add=add)
    onednn = _FUSED is not None and x.dtype in _ONEDNN_DTYPES
    if onednn and add is not None and not relu and add.dtype == x.dtype and _same_layout(add, x):
        return _FUSED.binary(x, add, weight, bias, [1, 1], [1, 1], [1, 1], 1, "add", None, None, [], None)
    if onednn:
        y = _FUSED(x, weight, bias, [1, 1], [1, 1], [1, 1], 1, "relu" if relu else "none", [], "")
    else:
        y = F.conv2d(x, weight, bias, padding=1)
        y = y.relu_() if relu else y
    return y if add is None else y.add_(add)


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Both dense in channels_last, or both dense in the default order."""
    if b.is_contiguous(memory_format=torch.channels_last) and not b.is_contiguous():
        return a.is_contiguous(memory_format=torch.channels_last)
    return a.is_contiguous()


class _ConvReLU(torch.autograd.Function):
    """relu(conv(x)), then max_pool2d(·, 2, 2) if `pool`; with `pass_input`, x is a second output."""

    @staticmethod
    def forward(ctx, x, bias, weights, pool, pass_input):
        forward_weight, ctx.flipped = weights
        y = conv3x3(x, forward_weight, bias, relu=True)
        ctx.size = y.shape[-2:]
        if pool:
            y, indices = torch.ops.aten.max_pool2d_with_indices(y, [2, 2], [2, 2])
            ctx.save_for_backward(y, indices)
        else:
            ctx.save_for_backward(y)
        if pass_input:
            ctx.set_materialize_grads(False)
            return y, x
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad, passed_grad=None):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        if grad is None:
            return passed_grad, None, None, None, None
        y, *indices = ctx.saved_tensors
        masked = torch.ops.aten.threshold_backward(grad, y, 0)
        if indices:
            masked = _unpool(masked, indices[0], ctx.size)
        return conv3x3(masked, ctx.flipped, None, add=passed_grad), None, None, None, None


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """max_pool2d(x, 2, 2) whose backward scatters with max_unpool2d, faster on CPU than torch's
    pool backward for channels_last maps (docs/performance.md); the same values (windows do not overlap)."""
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
        return _unpool(grad, indices, ctx.size)


def _unpool(grad: torch.Tensor, indices: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """max_unpool2d(grad, indices, 2, 2), through float32 where this torch has no kernel for
    grad's dtype (torch 2.4 has none for bfloat16); exact either way, a scatter copies values."""
    if _unpool_runs_in(grad.dtype):
        return F.max_unpool2d(grad, indices, 2, 2, output_size=size)
    return F.max_unpool2d(grad.float(), indices, 2, 2, output_size=size).to(grad.dtype)


@functools.cache
def _unpool_runs_in(dtype: torch.dtype) -> bool:
    """Whether max_unpool2d has a CPU kernel for `dtype` in both memory formats."""
    try:
        for layout in (torch.contiguous_format, torch.channels_last):
            grad = torch.zeros(1, 2, 2, 2, dtype=dtype).contiguous(memory_format=layout)
            F.max_unpool2d(grad, torch.zeros_like(grad, dtype=torch.long), 2, 2)
    except RuntimeError:
        return False
    return True
