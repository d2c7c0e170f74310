"""Cost of every registered style loss's value and gradient as the number of positions M grows.

One case is one loss at one M: features (1, N, √M, √M) with N = 64 channels (relu1_1's
count; M = 262144 is a 512² image at relu1_1), ReLU'd Gaussian noise for the output and
for the style, float32 as the objective hands them to the losses. `measure_case` runs in a
fresh interpreter (measure.isolated): it warms the loss up on a 4×4 map (so one-time library
setup is not counted), builds the loss with its defaults (losses.create), computes the style's
target (timed on its own: once per scale in a transfer), then measures peak memory over the
first value + backward call and times further calls.

An M×M float32 matrix needs 4·M² bytes (256 GiB at M = 262144): a loss whose peak stays far
below that does not materialise one. Cases predicted to exceed the time budget are skipped
with the prediction, extrapolated from the same loss's measured cases.
"""
from __future__ import annotations

import math
import time

import torch

import losses
from gatys.device import resolve_device

from .measure import PeakMemory, median, synchronize, timed

POSITIONS = (1024, 4096, 16384, 65536, 262144)
CHANNELS = 64


def features(channels: int, positions: int, seed: int, device: torch.device) -> torch.Tensor:
    side = math.isqrt(positions)
    height, width = (side, side) if side * side == positions else (1, positions)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, channels, height, width, generator=generator).clamp_min_(0).to(device)


def _warm_up(name: str, channels: int, device: torch.device) -> None:
    """One tiny value + gradient of a separate instance, so one-time library setup is not counted as the case's."""
    loss = losses.create(name)
    output = features(channels, 16, 2, device).requires_grad_(True)
    with torch.no_grad():
        target = loss.target(features(channels, 16, 3, device))
    loss(output, target).backward()


def measure_case(name: str, positions: int, channels: int = CHANNELS, device: str = "auto",
                 repeats: int = 5, seconds_budget: float = 10.0) -> dict:
    target_device = resolve_device(device)
    _warm_up(name, channels, target_device)
    loss = losses.create(name)
    output = features(channels, positions, 0, target_device).requires_grad_(True)
    style = features(channels, positions, 1, target_device)
    began = time.perf_counter()
    with torch.no_grad():
        target = loss.target(style)
    synchronize(target_device)
    target_seconds = time.perf_counter() - began

    def value_and_gradient() -> None:
        output.grad = None
        loss(output, target).backward()

    with PeakMemory(target_device) as memory:
        began = time.perf_counter()
        value_and_gradient()
        synchronize(target_device)
        first_seconds = time.perf_counter() - began
    count = max(1, min(repeats, int(seconds_budget / max(first_seconds, 1e-9))))
    seconds = timed(value_and_gradient, target_device, count, warmup=0)
    return {
        "name": name,
        "positions": positions,
        "channels": channels,
        "shape": list(output.shape),
        "device": str(target_device),
        "seconds": median(seconds),
        "repeats": count,
        "first_seconds": first_seconds,
        "target_seconds": target_seconds,
        "memory": memory.as_dict(),
        "m_by_m_float32_bytes": 4 * positions**2,
        "input_bytes": output.numel() * output.element_size(),
    }


def predicted_seconds(measured: list[dict], positions: int) -> float | None:
    """Seconds of one value + gradient at `positions`, from the loss's measured cases.

    Power law through the last two points, exponent clamped to [1, 2]; from one point, quadratic.
    """
    points = [(case["positions"], case["seconds"]) for case in measured if "seconds" in case]
    if not points:
        return None
    (m1, t1), (m0, t0) = points[-1], points[-2] if len(points) > 1 else (None, None)
    exponent = 2.0
    if m0 is not None and t0 > 0 and t1 > 0 and m1 != m0:
        exponent = min(2.0, max(1.0, math.log(t1 / t0) / math.log(m1 / m0)))
    return t1 * (positions / m1) ** exponent
