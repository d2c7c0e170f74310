"""Where Winograd pays on this CPU: each VGG19 conv, direct against Winograd F(4×4, 3×3), float32.

    python -m benchmarks.winograd_layers                # 256 and 512 px, every conv up to conv5_1
    python -m benchmarks.winograd_layers --sizes 256 --repeats 9

The float32 CPU path picks an algorithm per conv with `winograd.pays` (a rule measured on
one CPU class). This times both algorithms as the engine calls them: the forward (conv +
bias + ReLU, oneDNN with weights packed for the shape, against WinogradWeights.conv) and the
input gradient (the same conv with C_in and C_out swapped), on the layer shapes of a
square image at each size, and prints per conv: milliseconds of each, their ratio, the
rule's choice and the faster one. A disagreement between the last two is where the rule
does not fit this CPU. Random weights: the time does not depend on the values.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gatys.fast.cpu_layers import conv3x3, pack_weight
from gatys.device import configure
from gatys.fast.winograd import WinogradWeights, pays

from . import machine, tables
from .floor import _conv_shapes
from .measure import median, timed


def time_layer(c_in: int, c_out: int, height: int, width: int, repeats: int) -> dict:
    """Median ms of the direct and the Winograd conv(+bias, ReLU) of a (1, c_in, H, W) float32 input."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, c_in, height, width, generator=generator).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c_out, c_in, 3, 3, generator=generator) * (2 / (9 * c_in)) ** 0.5
    bias = torch.zeros(c_out)
    packed, transformed = pack_weight(weight, tuple(x.shape)), WinogradWeights(weight)
    cpu = torch.device("cpu")
    with torch.no_grad():
        direct = median(timed(lambda: conv3x3(x, packed, bias, relu=True), cpu, repeats, warmup=2))
        winograd = median(timed(lambda: transformed.conv(x, bias, relu=True), cpu, repeats, warmup=2))
    return {"c_in": c_in, "c_out": c_out, "height": height, "width": width, "direct_ms": 1e3 * direct,
            "winograd_ms": 1e3 * winograd, "rule": pays(c_in, c_out, height, width)}


def measure(sizes: list[int], repeats: int) -> list[dict]:
    rows = []
    for size in sizes:
        for shape in _conv_shapes(size, size, "conv5_1"):
            if shape["in"] == 3:
                continue  # conv1_1: three input channels, never a product worth transforming
            for direction, (c_in, c_out) in (("forward", (shape["in"], shape["out"])),
                                             ("input grad", (shape["out"], shape["in"]))):
                row = time_layer(c_in, c_out, shape["height"], shape["width"], repeats)
                rows.append({"size": size, "conv": shape["name"], "direction": direction, **row})
    return rows


def render(rows: list[dict], cpu: str) -> str:
    body = []
    for row in rows:
        ratio = row["direct_ms"] / row["winograd_ms"]
        faster = "winograd" if ratio > 1 else "direct"
        rule = "winograd" if row["rule"] else "direct"
        body.append([row["size"], row["conv"], row["direction"], f"{row['c_in']}→{row['c_out']}",
                     f"{row['height']}×{row['width']}", f"{row['direct_ms']:.2f}", f"{row['winograd_ms']:.2f}",
                     f"{ratio:.2f}", rule, faster + ("" if faster == rule else "  ← rule disagrees")])
    return tables.render(f"Direct against Winograd, float32, ms per call ({cpu})",
                         ["size", "conv", "call", "channels", "map", "direct ms", "winograd ms", "direct/winograd",
                          "rule", "faster"], body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512", help="square image sides, comma-separated")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per algorithm and layer")
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON here")
    options = parser.parse_args()
    configure(torch.device("cpu"))
    described = machine.describe(torch.device("cpu"))
    rows = measure([int(size) for size in options.sizes.split(",")], options.repeats)
    print(render(rows, described.get("cpu", "CPU")))
    if options.out:
        options.out.write_text(json.dumps({"machine": described, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
