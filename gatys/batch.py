"""Many runs at once: one network pass over a batch of images, each image with its own objective.

A batch is a list of independent runs (the seeds and losses of a study, the jobs of a
gallery at one size). Each evaluation concatenates their images, runs the network once
over the batch at the union of their layers, hands each run its share of the features,
sums the runs' objectives and backpropagates once: since the runs share no pixels, each
image's gradient is its own objective's. Each run then takes its own optimizer step
(optimize.run_together), so its iterates are those of its run alone, to the rounding of a
batched convolution. On the CPU each image takes its own pass instead, as it would alone:
a batch fills no idle cores there (two cores are busy with one image; a batched pass was
measured slower per picture, docs/performance.md), the Winograd convs take one image at a
time, and a run's result in a batch is then its result alone exactly, on every oneDNN
(whose batched kernels round differently from its single-image ones on some CPUs).

Runs can share a batch when the network pass is the same for all (weights, input
convention, pooling, device, precision), their optimizer steps one evaluation at a time
and their scale schedules and image shapes agree: `batch_key` plus the content's shape.
"""
from __future__ import annotations

from itertools import islice
from typing import Hashable, Iterable, Iterator, Sequence, TypeVar

import torch

from .config import TransferConfig
from .fast.cuda_graph import evaluate_eagerly
from .device import resolve_device, resolve_precision
from .objective import Objective

BATCHABLE_OPTIMIZERS = ("lbfgs", "adam")
Item = TypeVar("Item")


def evaluate_batch(objectives: Sequence[Objective], xs: Sequence[torch.Tensor], one_pass: bool | None = None
                   ) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """Each objective at its x, gradients in each x.grad: [(total, parts)], detached.

    one_pass: one network pass over the batch (the default off the CPU) or each image
    evaluated as it would be alone (the default on the CPU, see the module docstring).
    """
    if one_pass is None:
        one_pass = xs[0].device.type != "cpu"
    if not one_pass:
        return [evaluate_eagerly(objective, x) for objective, x in zip(objectives, xs)]
    for x in xs:
        x.grad = None
    layers = sorted({layer for objective in objectives for layer in objective.layers})
    feats = objectives[0].features(torch.cat(list(xs)), layers)
    results, total = [], 0.0
    for index, (objective, x) in enumerate(zip(objectives, xs)):
        share = {layer: feats[layer][index : index + 1] for layer in objective.layers}
        value, parts = objective.from_features(x, share)
        results.append((value.detach(), parts))
        total = total + value
    total.backward()
    return results


def batch_key(config: TransferConfig) -> Hashable:
    """What runs in one batch must share: the network pass, the optimizer family and the schedule.

    None for a run that cannot be batched (an optimizer that is not stepped one evaluation
    at a time). Runs with equal keys batch when their contents also have one shape.
    """
    if config.optimizer not in BATCHABLE_OPTIMIZERS:
        return None
    device = resolve_device(config.device)
    return (str(config.weights), config.weights_convention, config.pooling, str(device),
            resolve_precision(config.precision, device), config.optimizer, tuple(config.scale_sizes()))


def chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """items in lists of at most `size`, in order."""
    iterator = iter(items)
    while chunk := list(islice(iterator, max(1, size))):
        yield chunk
