"""Memory a transfer needs, estimated before it starts, against what the device has free.

The estimate counts VGG's feature maps up to the deepest layer a run computes (every conv's
output at the largest scale), times three (the maps kept for the backward pass, their
gradients, and the workspace around them), in float32, plus the network's weights. It is an
estimate: it refuses sizes that cannot fit, and lets through what might.
"""
from __future__ import annotations

import torch

from .vgg import BLOCKS, TORCHVISION_INDEX, CONV_LAYERS

COPIES = 3
WEIGHTS_BYTES = 600 * 2**20  # the network, its packed copies and the process around it


def estimate_bytes(height: int, width: int, deepest: str) -> int:
    """Bytes a transfer at (height, width) needs with the network cut after layer `deepest`."""
    elements = 0
    for name in CONV_LAYERS:
        if TORCHVISION_INDEX[name] > TORCHVISION_INDEX[deepest]:
            break
        block = int(name[4]) - 1
        channels = BLOCKS[block][0]
        elements += channels * (height >> block) * (width >> block)
    return COPIES * 4 * elements + WEIGHTS_BYTES


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
