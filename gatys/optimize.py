"""Pixel optimizers: one objective evaluation per iteration, so iteration counts compare.

  lbfgs   L-BFGS (history 100, no line search) stepped one evaluation at a time: torch's
          iterates, computed in the compact form (gatys/lbfgs.py)
  adam    Adam in [0, 1] pixel space, the iterate clamped to the box after every step
  lbfgsb  scipy's L-BFGS-B with the [0, 1] box as bounds (float64 on the host)

`evaluate()` zeroes the gradient, computes the objective at x, backpropagates and returns
the loss (detached). A non-finite loss under L-BFGS restores the best image so far and
restarts the optimizer's memory instead of spreading NaNs (the NaN guard); it is done on
the device, and the loop reads the device only every GUARD_EVERY steps to stop a run
whose objective stays non-finite.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .lbfgs import LBFGS

DEFAULT_LEARNING_RATE = {"lbfgs": 1.0, "adam": 0.02, "lbfgsb": None}
LBFGS_HISTORY = 100
GUARD_EVERY = 50  # steps between the loop's reads of the device: the NaN guard and the convergence check

Evaluate = Callable[[], torch.Tensor]
Converged = Callable[[], bool]


def run(name: str, x: torch.Tensor, evaluate: Evaluate, iterations: int, learning_rate: float | None = None,
        best: torch.Tensor | None = None, converged: Converged | None = None) -> str:
    """Optimise x (a leaf tensor requiring grad) in place for at most `iterations` evaluations.

    Returns why it stopped: "budget" (the iterations ran out) or "converged" (`converged()`,
    asked every GUARD_EVERY steps by L-BFGS and Adam, said so).
    """
    lr = learning_rate if learning_rate is not None else DEFAULT_LEARNING_RATE[name]
    if iterations <= 0:
        return "budget"
    if name == "lbfgs":
        return _lbfgs(x, evaluate, iterations, lr, best, converged)
    if name == "adam":
        return _adam(x, evaluate, iterations, lr, best, converged)
    if name == "lbfgsb":
        _lbfgsb(x, evaluate, iterations)
        return "budget"
    raise ValueError(f"unknown optimizer {name!r}")


def _lbfgs(x: torch.Tensor, evaluate: Evaluate, iterations: int, lr: float, best: torch.Tensor | None,
           converged: Converged | None) -> str:
    history = min(LBFGS_HISTORY, iterations)  # a short run never stores more pairs than it has steps
    optimizer = LBFGS(x, lr, history, fallback=best)
    for done in range(1, iterations + 1):
        optimizer.step(evaluate)
        if done % GUARD_EVERY == 0 or done == iterations:
            _stop_if_stuck(optimizer.worst, best)
            if done < iterations and _done(done, converged):
                return "converged"
    return "budget"


def _done(steps: int, converged: Converged | None) -> bool:
    return converged is not None and steps % GUARD_EVERY == 0 and converged()


def _stop_if_stuck(worst: torch.Tensor, best: torch.Tensor | None) -> None:
    """Raise once non-finite evaluations come two in a row: restoring the best image did not help."""
    allowed = 0 if best is None else 1  # with a best image, one failure in a row is restored
    if int(worst) > allowed:  # the loop's only read of the device
        raise FloatingPointError("the objective is not finite; lower the learning rate or the loss weights")


def _adam(x: torch.Tensor, evaluate: Evaluate, iterations: int, lr: float, best: torch.Tensor | None,
          converged: Converged | None) -> str:
    """Adam, the iterate clamped to [0, 1]; a non-finite evaluation is a zero gradient and x goes back to best."""
    optimizer = torch.optim.Adam([x], lr=lr, betas=(0.9, 0.99))
    failures = torch.zeros((), dtype=torch.long, device=x.device)
    worst = torch.zeros_like(failures)
    for done in range(1, iterations + 1):
        loss = evaluate()
        finite = torch.isfinite(loss) & torch.isfinite(x.grad).all()
        x.grad = torch.where(finite, x.grad, torch.zeros((), dtype=x.dtype, device=x.device))
        optimizer.step()
        with torch.no_grad():
            if best is not None:
                torch.where(finite, x, best, out=x)
            x.clamp_(0, 1)
        failures.add_(1).mul_(~finite)
        torch.maximum(worst, failures, out=worst)
        if done % GUARD_EVERY == 0 or done == iterations:
            _stop_if_stuck(worst, best)
            if done < iterations and _done(done, converged):
                return "converged"
    return "budget"


class _Done(Exception):
    """Raised inside scipy's callback once the evaluation budget is spent."""


def _lbfgsb(x: torch.Tensor, evaluate: Evaluate, iterations: int) -> None:
    from scipy.optimize import Bounds, minimize

    count = 0
    shape, dtype = x.shape, x.dtype

    def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal count
        if count >= iterations:
            raise _Done
        count += 1
        with torch.no_grad():
            x.copy_(torch.from_numpy(z).view(shape).to(x.device, dtype))
        loss = evaluate()
        return float(loss), x.grad.detach().double().cpu().numpy().ravel()

    start = x.detach().double().cpu().numpy().ravel().clip(0, 1)
    try:
        result = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=Bounds(np.zeros_like(start), np.ones_like(start)),
                          options={"maxfun": iterations + 1, "maxiter": iterations, "maxcor": 20,
                                   "ftol": 0.0, "gtol": 0.0})
        final = result.x
    except _Done:
        return  # x already holds the last evaluated point
    with torch.no_grad():
        x.copy_(torch.from_numpy(final).view(shape).to(x.device, dtype))
