"""The floor of an objective evaluation: its FLOPs over the device's measured 3×3 conv throughput.

FLOPs are counted from the layer shapes (a multiply-add is 2 FLOPs):

  conv forward          2·C_in·C_out·9·H·W per conv, up to the deepest layer the objective uses
  conv backward         the same again per conv: the gradient is needed with respect to the
                        input only (the weights never require grad), and that is a transposed
                        3×3 conv of the same size; conv1_1's input gradient (the pixels) included
  the Gram losses       F·Fᵀ forward and F·(g + gᵀ) backward, 4·N²·M per style layer, about 5 % of
                        the network: matrix products an evaluation must do, so part of its floor
  not counted           bias, ReLU, pooling and their backward (elementwise, < 1 % of the FLOPs)

The conv FLOPs are those of direct convolution (the usual "effective FLOPs"). On the CPU in
float32 the deep convs run Winograd F(4×4, 3×3) (gatys/fast/winograd.py), whose batched products
do 36 multiply-adds per 4×4 block and channel pair instead of 144: `winograd_flops` counts
both, so a report can give the ratio to the floor as defined here and to the multiply-adds
actually performed; the first can fall below 1.

The throughput is the best of several timings of one large conv (256 → 256 channels, 3×3,
128×128, batch 1) at each precision and memory format, forward and input-gradient; the floor
of a precision uses its best forward rate over the memory formats. On CUDA the engine's own
settings apply (TF32 allowed for fp32, cudnn.benchmark on).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gatys.fast import winograd
from gatys.device import configure
from gatys.vgg import BLOCKS, LAYERS, TORCHVISION_INDEX

from .measure import timed

PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _conv_shapes(height: int, width: int, deepest: str) -> list[dict]:
    """(name, C_in, C_out, H, W) of every conv computed up to `deepest`."""
    shapes = []
    channels = 3
    last = TORCHVISION_INDEX[deepest]
    for block, (out_channels, convs) in enumerate(BLOCKS, start=1):
        for conv in range(1, convs + 1):
            name = f"conv{block}_{conv}"
            if TORCHVISION_INDEX[name] > last:
                return shapes
            shapes.append({"name": name, "in": channels, "out": out_channels, "height": height, "width": width})
            channels = out_channels
        height, width = height // 2, width // 2
    return shapes


def network_flops(height: int, width: int, layers: list[str]) -> dict:
    """Forward and input-gradient FLOPs of VGG19 run to the deepest of `layers` on an H×W image."""
    deepest = max(layers, key=TORCHVISION_INDEX.__getitem__)
    per_conv = {shape["name"]: 2 * shape["in"] * shape["out"] * 9 * shape["height"] * shape["width"]
                for shape in _conv_shapes(height, width, deepest)}
    forward = sum(per_conv.values())
    return {"deepest": deepest, "forward": forward, "backward": forward, "total": 2 * forward, "per_conv": per_conv}


def winograd_flops(height: int, width: int, layers: list[str]) -> dict:
    """The convs the float32 CPU path runs by Winograd: their direct FLOPs (forward + input gradient)
    and the FLOPs of the batched products that replace them (2·36·C_in·C_out per 4×4 block, each way)."""
    deepest = max(layers, key=TORCHVISION_INDEX.__getitem__)
    chosen = [shape for shape in _conv_shapes(height, width, deepest)
              if winograd.pays(shape["in"], shape["out"], shape["height"], shape["width"])]
    direct = sum(2 * 2 * s["in"] * s["out"] * 9 * s["height"] * s["width"] for s in chosen)
    blocks = [-(-s["height"] // winograd.OUT) * -(-s["width"] // winograd.OUT) for s in chosen]
    products = sum(2 * 2 * 36 * s["in"] * s["out"] * n for s, n in zip(chosen, blocks))
    return {"convs": [s["name"] for s in chosen], "direct": direct, "products": products}


def layer_shape(height: int, width: int, layer: str) -> tuple[int, int, int]:
    """(C, H, W) of a layer's output for an H×W input (max or avg pooling halve, rounding down)."""
    pools = sum(1 for name in LAYERS[: TORCHVISION_INDEX[layer] + 1] if name.startswith("pool"))
    channels = BLOCKS[int(layer[4]) - 1][0]
    return channels, height // 2**pools, width // 2**pools


def gram_flops(height: int, width: int, style_layers: list[str]) -> int:
    """FLOPs of the Gram loss's value and gradient: 4·N²·M per style layer."""
    total = 0
    for layer in style_layers:
        channels, h, w = layer_shape(height, width, layer)
        total += 4 * channels**2 * h * w
    return total


def conv_throughput(device: torch.device, precision: str, memory_format: torch.memory_format,
                    channels: int = 256, side: int = 128, repeats: int = 5) -> dict:
    """Best forward and input-gradient GFLOP/s of one channels→channels 3×3 conv on a side×side map."""
    configure(device)
    dtype = PRECISION_DTYPES[precision]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, side, side, generator=generator).to(device, dtype, memory_format=memory_format)
    weight = (torch.randn(channels, channels, 3, 3, generator=generator) / (3 * channels**0.5)).to(
        device, dtype, memory_format=memory_format)
    bias = torch.zeros(channels, device=device, dtype=dtype)
    grad_out = torch.randn_like(x)
    flops = 2 * channels * channels * 9 * side * side

    def forward():
        F.conv2d(x, weight, bias, padding=1)

    def backward_input():
        torch.ops.aten.convolution_backward(grad_out, x, weight, None, (1, 1), (1, 1), (1, 1), False, (0, 0), 1,
                                            (True, False, False))

    with torch.inference_mode():
        forward_seconds = min(timed(forward, device, repeats, warmup=2))
        backward_seconds = min(timed(backward_input, device, repeats, warmup=2))
    return {"precision": precision, "memory_format": "channels_last" if memory_format == torch.channels_last
            else "contiguous", "shape": [1, channels, side, side], "flops": flops,
            "forward_gflops": flops / forward_seconds / 1e9, "backward_input_gflops": flops / backward_seconds / 1e9}
