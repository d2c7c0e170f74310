"""The engine's L-BFGS step against another implementation of it, alternating on one machine.

    git show 4afed4d:gatys/lbfgs.py > /tmp/lbfgs_before.py
    python -m benchmarks.lbfgs_step /tmp/lbfgs_before.py --device cuda --shape 3,341,512

Both optimise the same ill-conditioned quadratic ½·Σ c·x² (c log-spaced over four decades)
from the same start, with the engine's history (100 pairs), until the history is full;
then their steps alternate, each timed with the device synchronised, and the paired
differences give mean ± two standard errors. The objective is a few elementwise
operations, so the times are the optimiser's. Prints one line; no JSON.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import torch

from gatys import optimize
from gatys.fast.lbfgs import LBFGS

from .engine_speed import quadratic_problem
from .measure import synchronize


def load_other(path: str) -> type:
    spec = importlib.util.spec_from_file_location("lbfgs_other", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LBFGS


def prepared(optimizer_class: type, shape: tuple[int, ...], device: torch.device):
    """An optimizer with a full history on the quadratic, its step closure and its x."""
    curvature, x = quadratic_problem(shape, device)
    optimizer = optimizer_class(x, 1.0, optimize.LBFGS_HISTORY)

    def closure() -> torch.Tensor:
        with torch.no_grad():
            x.grad = curvature * x
            return 0.5 * (x.grad * x).sum()

    for _ in range(optimize.LBFGS_HISTORY + 10):
        optimizer.step(closure)
    return optimizer, closure, x


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lbfgs_step", description=__doc__.splitlines()[0])
    parser.add_argument("other", help="a Python file defining LBFGS(x, lr, history) with .step(closure)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", default="3,170,256", help="x's shape (3,H,W of an image)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps of each")
    options = parser.parse_args()
    device = torch.device(options.device)
    shape = tuple(int(part) for part in options.shape.split(","))
    runs = [prepared(load_other(options.other), shape, device), prepared(LBFGS, shape, device)]
    seconds: list[list[float]] = [[], []]
    for _ in range(options.steps):
        for index, (optimizer, closure, _) in enumerate(runs):
            synchronize(device)
            began = time.perf_counter()
            optimizer.step(closure)
            synchronize(device)
            seconds[index].append(time.perf_counter() - began)
    differences = [other - ours for other, ours in zip(*seconds)]
    error = 2 * statistics.stdev(differences) / len(differences) ** 0.5
    print(f"{device} {shape}: other {statistics.median(seconds[0]) * 1e3:.3f} ms, this "
          f"{statistics.median(seconds[1]) * 1e3:.3f} ms per step, other − this "
          f"{statistics.mean(differences) * 1e3:.3f} ± {error * 1e3:.3f} ms (2 s.e.)")


if __name__ == "__main__":
    main()
