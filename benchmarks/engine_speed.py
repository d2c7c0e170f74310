"""Seconds per objective evaluation of a real transfer, its breakdown, and peak memory.

`measure` runs in a fresh interpreter (measure.isolated), once per size × precision ×
memory format × mode (workload.MODES: eager, or on CUDA a captured graph per evaluation,
torch.compile of the network, or both), on workload.CONTENT and workload.STYLE with the
engine's default settings:

  end to end   Transfer.run with a callback that timestamps every evaluation; the median
               interval after `warmup` evaluations (each interval is one L-BFGS step: the
               objective, its gradient, the optimizer's update and the engine's bookkeeping)
  breakdown    always eager (no graph), on the same Objective that run builds
               (Transfer.objective): the median of `repeats` calls of: network forward
               (Objective.features, timed by wrapping it), losses (the rest of
               Objective.forward), backward (total.backward()); and, for comparison, the
               network's forward and backward alone (no losses);
               optimizer is the engine's L-BFGS step (gatys/fast/lbfgs.py) on an x of the image's
               shape, minus its objective (a cheap ill-conditioned quadratic), with the history the
               timed intervals had and with a full one (optimize.LBFGS_HISTORY pairs), which is
               what every step of a long run pays
  memory       peak over the end-to-end run (measure.PeakMemory); the run is shorter than
               L-BFGS's history, so the history's full size is reported beside it
  conv rate    with conv_probe, the floor's conv (floor.conv_throughput) timed again in the same
               process after the run, so the case's ratio to the floor can also be taken between
               two timings minutes apart at most (the suite's own probe runs first, and this
               machine's speed drifts by several per cent between runs)

`measure_long` is one long end-to-end run (the 1000 evaluations at 512 px asked for on GPUs).
"""
from __future__ import annotations

import math
import time

import torch

from gatys import Transfer, optimize
from gatys.device import resolve_device, resolve_precision

from . import workload
from .floor import conv_throughput
from .measure import PeakMemory, median, synchronize, timed


def measure(size: int, precision: str, memory_format: str, device: str = "auto", evaluations: int = 30,
            repeats: int = 7, warmup: int = 3, mode: str = "eager",
            conv_probe: tuple[int, int, int] | None = None) -> dict:
    if mode not in workload.MODES:
        raise ValueError(f"mode must be one of {', '.join(workload.MODES)}, not {mode!r}")
    config = workload.settings(size, precision, device).replace(cuda_graph=mode.endswith("graph"))
    target = resolve_device(config.device)
    with workload.memory_format(memory_format):
        transfer = workload.prepared(config, memory_format)
        objective, start = workload.objective_at_start(transfer, workload.CONTENT, workload.STYLE)
        network = transfer.network(config, target, resolve_precision(config.precision, target))
        if mode.startswith("compile"):  # after the style's features: one compile fewer
            network.compile()  # its forward is traced, so the format probe cannot patch it
        observed = {} if mode.startswith("compile") else workload.observe_format(network)
        stamps: list[float] = []

        def stamp(progress) -> None:
            synchronize(target)
            stamps.append(time.perf_counter())

        with PeakMemory(target) as memory:
            began = time.perf_counter()
            result = transfer.run(workload.CONTENT, workload.STYLE, iterations=evaluations, callback=stamp)
        intervals = [b - a for a, b in zip(stamps, stamps[1:])]
        steady = intervals[warmup:] or intervals
        parts = breakdown(objective, start, target, repeats, warmup=min(warmup, 2))
    adjacent = adjacent_conv_rate(target, resolve_precision(precision, target), conv_probe) if conv_probe else None
    costs = lbfgs_step_costs(tuple(start.shape), target)
    parts["optimizer"] = median(costs[warmup + 1 : evaluations])  # the history the timed intervals had
    parts["optimizer_full_history"] = median(costs[optimize.LBFGS_HISTORY + 2 :])
    if observed and memory_format != observed.get("format"):
        raise RuntimeError(f"asked for {memory_format}, the network ran {observed}: the memory-format switch "
                           f"in benchmarks/workload.py no longer matches gatys.engine")
    pixels = start.shape[-2] * start.shape[-1]
    history_bytes = 2 * optimize.LBFGS_HISTORY * 3 * pixels * 4
    return {
        "size": size,
        "shape": list(start.shape[-2:]),
        "precision": resolve_precision(precision, target),
        "memory_format": memory_format,
        "mode": mode,
        "observed": observed,
        "device": result.device,
        "evaluations": evaluations,
        "seconds_per_evaluation": median(steady),
        "first_evaluation_seconds": stamps[0] - began if stamps else None,
        "mean_seconds_per_evaluation": result.timings["seconds_per_evaluation"][0],
        "intervals": intervals,
        "breakdown": parts,
        "memory": memory.as_dict(),
        "lbfgs_history_full_bytes": history_bytes,
        "lbfgs_history_pairs_in_run": min(evaluations, optimize.LBFGS_HISTORY),  # its buffer's slots
        "layers": list(objective.layers),
        "style_layers": sorted({layer for term in objective.style_terms for layer in term.layers}),
        "content_layer": objective.content_layer,
        "adjacent_conv_gflops": adjacent,
    }


def adjacent_conv_rate(device: torch.device, precision: str, probe: tuple[int, int, int]) -> float:
    """The floor's conv rate (best forward GFLOP/s over the memory formats) timed again in this process,
    right after the case: a ratio of two timings taken together, which a machine whose speed drifts
    between the suite's start and the case does not skew."""
    channels, side, repeats = probe
    return max(conv_throughput(device, precision, layout, channels, side, repeats)["forward_gflops"]
               for layout in workload.MEMORY_FORMATS.values())


def breakdown(objective, start: torch.Tensor, device: torch.device, repeats: int, warmup: int = 2) -> dict:
    """Median seconds of the network forward, the losses and the backward pass of one evaluation."""
    x = start.clone().requires_grad_(True)
    network_seconds: list[float] = []
    features = objective.features

    def timed_features(image, layers):
        began = time.perf_counter()
        out = features(image, layers)
        synchronize(device)
        network_seconds.append(time.perf_counter() - began)
        return out

    rows = []
    objective.features = timed_features
    try:
        for _ in range(warmup + repeats):
            x.grad = None
            synchronize(device)
            began = time.perf_counter()
            total, _ = objective(x)
            synchronize(device)
            evaluated = time.perf_counter()
            total.backward()
            synchronize(device)
            done = time.perf_counter()
            rows.append((network_seconds[-1], evaluated - began - network_seconds[-1], done - evaluated))
    finally:
        objective.features = features
    rows = rows[warmup:]
    parts = {name: median([row[i] for row in rows]) for i, name in enumerate(("forward", "losses", "backward"))}
    parts["network_alone"] = network_alone_seconds(objective, start, device, repeats, warmup)
    return parts


def network_alone_seconds(objective, start: torch.Tensor, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median seconds of the network's forward and backward alone: the objective's layers, no losses.

    The backward pass gets gradients of ones at every output, in each output's own memory format.
    """
    x = start.clone().requires_grad_(True)

    def step() -> None:
        x.grad = None
        outputs = list(objective.features(x, objective.layers).values())
        torch.autograd.backward(outputs, [torch.ones_like(output) for output in outputs])

    return median(timed(step, device, repeats, warmup))


def lbfgs_step_costs(shape: tuple[int, ...], device: torch.device,
                     steps: int = optimize.LBFGS_HISTORY + 12) -> list[float]:
    """Seconds each L-BFGS step (the engine's settings) spends outside its objective, from an empty history.

    Step k (0-based) works with about k − 1 stored pairs until the history is full.
    """
    curvature, x = quadratic_problem(shape, device)
    optimizer = optimize.LBFGS(x, lr=1.0, history=optimize.LBFGS_HISTORY)
    objective_seconds: list[float] = []

    def closure() -> torch.Tensor:
        began = time.perf_counter()
        with torch.no_grad():
            x.grad = curvature * x
            loss = 0.5 * (x.grad * x).sum()
        synchronize(device)
        objective_seconds.append(time.perf_counter() - began)
        return loss

    step_seconds = timed(lambda: optimizer.step(closure), device, steps, warmup=0)
    return [step - inner for step, inner in zip(step_seconds, objective_seconds)]


def quadratic_problem(shape: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(c, x₀) of the ill-conditioned quadratic ½·Σ c·x² (c log-spaced over four decades, shuffled) that
    times the optimizer: cheap to evaluate, and every step adds a valid (s, y) pair."""
    generator = torch.Generator().manual_seed(0)
    count = math.prod(shape)
    curvature = torch.logspace(-4, 0, count)[torch.randperm(count, generator=generator)].view(shape).to(device)
    return curvature, torch.rand(shape, generator=generator).to(device).requires_grad_(True)


def measure_long(size: int, evaluations: int, device: str = "auto") -> dict:
    """One end-to-end transfer of `evaluations` L-BFGS evaluations with default settings."""
    config = workload.settings(size, "auto", device, iterations=evaluations)
    target = resolve_device(config.device)
    transfer = Transfer(config)
    transfer.run(workload.CONTENT, workload.STYLE, iterations=1)  # load the network, warm up
    with PeakMemory(target) as memory:
        result = transfer.run(workload.CONTENT, workload.STYLE)
    return {
        "size": size,
        "shape": list(result.image.shape[-2:]),
        "precision": result.precision,
        "device": result.device,
        "evaluations": evaluations,
        "total_seconds": result.timings["total_seconds"],
        "optimisation_seconds": result.timings["scale_seconds"][0],
        "seconds_per_evaluation": result.timings["seconds_per_evaluation"][0],
        "final_losses": result.final_losses,
        "memory": memory.as_dict(),
    }
