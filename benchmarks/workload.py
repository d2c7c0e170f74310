"""What every benchmark runs: the sample images, the engine's default settings, and its objective.

The timed transfer is `gatys transfer chelsea.png starry_night.jpg` with default settings
(Gram loss, relu1_1 … relu5_1 style layers, relu4_2 content layer, L-BFGS) at a given size,
precision and memory format. One thing the public API does not offer is done here, and
only here:

  memory_format("contiguous")  the engine always runs the network channels_last on CPU and
                               CUDA; to measure the alternative this patches the one private
                               function that picks the format (gatys.network_cache.memory_format)
                               and converts the cached network. `observe_format` checks that
                               the network really ran in the format asked for.
  direct_convolution()         the float32 CPU path runs its deep convs by Winograd
                               (gatys/fast/winograd.py); to compare results with the direct
                               convolution this patches the rule that picks them
                               (gatys.fast.winograd.pays) to pick none.
The objective a run optimises comes from the public Transfer.objective, so its parts can be
timed one by one and final images scored (Transfer.score) with exactly the run's objective.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator
from unittest import mock

import torch

from gatys import Transfer, TransferConfig
from gatys import network_cache
from gatys.fast import winograd
from gatys.device import resolve_device, resolve_precision
from gatys.images import as_image, resize
from gatys.objective import Objective

IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
CONTENT = IMAGES / "chelsea.png"
STYLE = IMAGES / "starry_night.jpg"
MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
DEFAULT_MEMORY_FORMAT = "channels_last"  # what the engine uses on CPU and CUDA
# How an evaluation is launched: eager; on CUDA, a captured graph (the engine's default there,
# config.cuda_graph), torch.compile of the network (measured only), or both.
MODES = ("eager", "graph", "compile", "compile+graph")


def default_mode(device: torch.device) -> str:
    return "graph" if device.type == "cuda" else "eager"


def settings(size: int, precision: str = "auto", device: str = "auto", iterations: int = 1) -> TransferConfig:
    """The engine's defaults at one size; everything else as `gatys transfer` would run it."""
    return TransferConfig(scales=(size,), precision=precision, device=device, iterations=iterations, tolerance=0.0)


@contextlib.contextmanager
def memory_format(name: str) -> Iterator[None]:
    """Run the engine's network in `name` ('contiguous' or 'channels_last') inside the block."""
    if name not in MEMORY_FORMATS:
        raise ValueError(f"memory format must be one of {', '.join(MEMORY_FORMATS)}, not {name!r}")
    if name == DEFAULT_MEMORY_FORMAT:
        yield
        return
    chosen = MEMORY_FORMATS[name]
    with mock.patch.object(network_cache, "memory_format", lambda device: chosen):
        yield


@contextlib.contextmanager
def direct_convolution() -> Iterator[None]:
    """Inside the block, every conv runs as a direct convolution, Winograd nowhere."""
    with mock.patch.object(winograd, "pays", lambda *shape: False):
        yield


def prepared(config: TransferConfig, memory_format_name: str) -> Transfer:
    """A Transfer whose cached network is already in the memory format asked for."""
    transfer = Transfer(config)
    device = resolve_device(config.device)
    network = transfer.network(config, device, resolve_precision(config.precision, device))
    network.to(memory_format=MEMORY_FORMATS[memory_format_name])
    return transfer


def objective_at_start(transfer: Transfer, content, style, **overrides) -> tuple[Objective, torch.Tensor]:
    """The objective Transfer.run builds for these inputs and its start image (the content), unevaluated."""
    objective = transfer.objective(content, style, **overrides)
    start = resize(as_image(content), shape=objective.image_shape)
    return objective, start.to(objective.content_target.device)


def observe_format(network: torch.nn.Module) -> dict:
    """A dict that the next forward pass fills with the memory format and dtype of its first feature map.

    The features are what the network computes, so they show the format it actually runs in.
    """
    seen: dict = {}

    def observed(x, layers):
        del network.forward  # back to the class's own forward
        features = network(x, layers)
        tensor = next(iter(features.values()))
        seen["format"] = ("channels_last" if tensor.is_contiguous(memory_format=torch.channels_last)
                          else "contiguous" if tensor.is_contiguous() else "strided")
        seen["dtype"] = str(tensor.dtype).replace("torch.", "")
        return features

    network.forward = observed
    return seen
