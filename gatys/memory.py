"""Memory a transfer needs, estimated before it starts, against a budget or what the device has free.

The estimate counts VGG's feature maps up to the deepest layer a run computes (every conv's
output at the largest scale), times three (the maps kept for the backward pass, their
gradients, and the workspace around them), in float32, plus the network's weights, plus the
image-sized vectors the optimiser keeps (x, its gradient, the best image, L-BFGS's history) and
the content target. It is an estimate: a picture whose evaluation does not fit is evaluated in
tiles (gatys/tiling.py) of the largest size that does; what cannot fit even so is refused.
"""
from __future__ import annotations

import math
import re

import torch

from .errors import GatysError

from .vgg import BLOCKS, TORCHVISION_INDEX, CONV_LAYERS

COPIES = 3
WEIGHTS_BYTES = 600 * 2**20  # the network, its packed copies and the process around it


def estimate_bytes(height: int, width: int, deepest: str) -> int:
    """Bytes a transfer at (height, width) needs with the network cut after layer `deepest`."""
    return feature_bytes(height, width, deepest) + WEIGHTS_BYTES


def feature_bytes(height: int, width: int, deepest: str) -> int:
    """Bytes of one evaluation's feature maps, gradients and workspace at (height, width), up to `deepest`."""
    elements = 0
    for name in CONV_LAYERS:
        if TORCHVISION_INDEX[name] > TORCHVISION_INDEX[deepest]:
            break
        block = int(name[4]) - 1
        channels = BLOCKS[block][0]
        elements += channels * (height >> block) * (width >> block)
    return COPIES * 4 * elements


VECTORS_BESIDE_HISTORY = 7  # x, its gradient, the best image, L-BFGS's direction, previous x and gradient, a spare
CONTENT_CHANNELS = 512      # relu4_2's target, at 1/8 of each side


def image_bytes(height: int, width: int, history: int) -> int:
    """Bytes of what stays whole while an image is evaluated in tiles: the optimiser's image-sized vectors
    (history pairs of L-BFGS, and those beside them) and the content target."""
    vector = 3 * height * width * 4
    return (2 * history + VECTORS_BESIDE_HISTORY) * vector + CONTENT_CHANNELS * (height // 8) * (width // 8) * 4


def transfer_bytes(height: int, width: int, deepest: str, history: int) -> int:
    """Bytes of a whole, untiled evaluation and everything around it."""
    return feature_bytes(height, width, deepest) + image_bytes(height, width, history) + WEIGHTS_BYTES


def tile_shape(height: int, width: int, deepest: str, history: int, budget: int, halo: int,
               grid: int) -> tuple[int, int] | None:
    """(tile height, tile width), multiples of `grid`, of the tiling whose evaluation fits `budget` beside the
    image's own vectors with the least halo: full-width strips or squares, as large as fit. None when the
    untiled evaluation fits; GatysError when not even one grid cell does."""
    if transfer_bytes(height, width, deepest, history) <= budget:
        return None
    room = budget - WEIGHTS_BYTES - image_bytes(height, width, history)
    best = None
    for full_width in (True, False):
        side = grid * (max(height, width) // grid + 1)
        while side >= grid:
            shape = (side, grid * -(-width // grid)) if full_width else (side, side)
            window = min(shape[0] + 2 * halo, height), min(shape[1] + 2 * halo, width)
            if feature_bytes(*window, deepest) <= room:
                cost = windows_area(height, width, shape, halo)
                if best is None or cost < best[0]:
                    best = (cost, shape)
                break
            side -= grid * max(1, side // grid // 16)  # down in steps of about 1/16
    if best is None:
        raise GatysError(f"a {width}×{height} px picture does not fit in {gib(budget)} even in tiles: its own "
                         f"vectors (the image, L-BFGS's history of {history} steps, the content target) and the "
                         f"network take {gib(image_bytes(height, width, history) + WEIGHTS_BYTES)}; raise "
                         "--max-memory, or use fewer --iterations at that scale or --optimizer adam")
    return best[1]


def windows_area(height: int, width: int, shape: tuple[int, int], halo: int) -> int:
    """Pixels the network evaluates over all tiles of `shape` with their halos (the work of one pass)."""
    def spans(length: int, tile: int) -> int:
        return sum(min(length, start + tile + halo) - max(0, start - halo) for start in range(0, length, tile))
    return spans(height, shape[0]) * spans(width, shape[1])


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12,
          "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """'2GB', '8GiB', '512MB', '1.5 GiB' → bytes (GB = 10⁹, GiB = 2³⁰); GatysError otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match and match.group(2).lower()
    if not match or unit not in _UNITS or not math.isfinite(float(match.group(1))) or float(match.group(1)) <= 0:
        raise GatysError(f"max-memory: cannot read {text!r} as a size: give a number with a unit, such as 2GB, "
                         "8GiB or 512MB")
    return int(float(match.group(1)) * _UNITS[unit])


def available_bytes(device: torch.device) -> int | None:
    """Free memory on the device: CUDA's free memory, Linux's MemAvailable for the CPU; None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        return meminfo_bytes("MemAvailable")
    return None


def meminfo_bytes(field: str) -> int | None:
    """A field of Linux's /proc/meminfo (MemTotal, MemAvailable, ...) in bytes; None elsewhere."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def gib(count: int) -> str:
    return f"{count / 2**30:.1f} GiB"
