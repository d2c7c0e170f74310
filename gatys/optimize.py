"""Pixel optimizers: one objective evaluation per iteration, so iteration counts compare.

  lbfgs   L-BFGS (history 100, no line search) stepped one evaluation at a time: torch's
          iterates, computed in the compact form (gatys/fast/lbfgs.py)
  adam    Adam in [0, 1] pixel space, the iterate clamped to the box after every step
  lbfgsb  scipy's L-BFGS-B with the [0, 1] box as bounds (float64 on the host)

`evaluate()` zeroes the gradient, computes the objective at x, backpropagates and returns
the loss (detached). A non-finite loss under L-BFGS restores the best image so far and
restarts the optimizer's memory instead of spreading NaNs (the NaN guard); it is done on
the device, and the loop reads the device only every GUARD_EVERY steps to stop a run
whose objective stays non-finite.

`run_together` steps several images at once, each with its own optimizer, budget and
convergence, from one evaluation of them all (a batch through the network: gatys/batch.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from .fast.lbfgs import LBFGS

DEFAULT_LEARNING_RATE = {"lbfgs": 1.0, "adam": 0.02, "lbfgsb": None}
LBFGS_HISTORY = 100
LBFGSB_HISTORY = 20  # SciPy L-BFGS-B's maxcor
GUARD_EVERY = 50  # steps between the loop's reads of the device: the NaN guard and the convergence check

Evaluate = Callable[[], torch.Tensor]
Converged = Callable[[], bool]


def run(name: str, x: torch.Tensor, evaluate: Evaluate, iterations: int, learning_rate: float | None = None,
        best: torch.Tensor | None = None, converged: Converged | None = None) -> str:
    """Optimise x (a leaf tensor requiring grad) in place for at most `iterations` evaluations.

    Returns why it stopped: "budget" (the iterations ran out) or "converged" (`converged()`,
    asked every GUARD_EVERY steps by L-BFGS and Adam, said so).
    """
    if iterations <= 0:
        return "budget"
    if name == "lbfgsb":
        _lbfgsb(x, evaluate, iterations)
        return "budget"
    member = Member(stepper(name, x, iterations, learning_rate, best), iterations, best is not None, converged)
    run_together([member], lambda active: [evaluate()])
    if member.error is not None:
        raise member.error
    return member.stopped


def history_vectors(name: str, iterations: int) -> int:
    """Image-sized vector pairs an optimizer keeps beyond x and its gradient (for the memory budget): L-BFGS's
    history, Adam's two moments (one pair), SciPy's L-BFGS-B's LBFGSB_HISTORY pairs (in float64: counted twice)."""
    if name == "lbfgs":
        return min(LBFGS_HISTORY, iterations)
    return 1 if name == "adam" else 2 * LBFGSB_HISTORY


def stepper(name: str, x: torch.Tensor, iterations: int, learning_rate: float | None = None,
            best: torch.Tensor | None = None) -> "LBFGS | AdamStepper":
    """The optimizer that moves x after each evaluation: move(loss) reads x.grad; `worst` counts failures."""
    lr = learning_rate if learning_rate is not None else DEFAULT_LEARNING_RATE.get(name)
    if name == "lbfgs":
        history = min(LBFGS_HISTORY, iterations)  # a short run never stores more pairs than it has steps
        return LBFGS(x, lr, history, fallback=best)
    if name == "adam":
        return AdamStepper(x, lr, best)
    raise ValueError(f"optimizer {name!r} cannot be stepped one evaluation at a time")


@dataclass
class Member:
    """One image optimised in a loop that may step several: its optimizer, budget and how it ended."""

    optimizer: "LBFGS | AdamStepper"
    iterations: int
    has_fallback: bool = False           # a best image to go back to: one failure in a row is survived
    converged: Converged | None = None
    done: int = 0
    stopped: str | None = None           # budget, converged or non-finite, once it left the loop
    error: FloatingPointError | None = None


def run_together(members: Sequence[Member], evaluate: Callable[[list[Member]], list[torch.Tensor]]) -> None:
    """Step every member until each has spent its budget, converged or failed.

    `evaluate(active)` evaluates the objective at each active member's x (filling its grad)
    and returns their losses; each member's optimizer then makes its own move, so a member's
    iterates are those of its run alone. A member leaves at its own budget, its own
    convergence (asked every GUARD_EVERY of its steps) or its own unrecoverable failure.
    """
    active = list(members)
    while active:
        with torch.enable_grad():
            losses = evaluate(active)
        for member, loss in zip(active, losses):
            member.optimizer.move(loss)
            member.done += 1
        active = [member for member in active if not _leaves(member)]


def _leaves(member: Member) -> bool:
    """Whether the member's run at this scale ends after its latest step (and why, in member.stopped)."""
    done = member.done
    if done % GUARD_EVERY and done < member.iterations:
        return False
    allowed = 1 if member.has_fallback else 0  # with a best image, one failure in a row is restored
    if int(member.optimizer.worst) > allowed:  # the loop's only read of the device
        member.stopped = "non-finite"
        member.error = FloatingPointError("the objective is not finite; lower the learning rate or the loss weights")
    elif done >= member.iterations:
        member.stopped = "budget"
    elif done % GUARD_EVERY == 0 and member.converged is not None and member.converged():
        member.stopped = "converged"
    return member.stopped is not None


class AdamStepper:
    """Adam, the iterate clamped to [0, 1]; a non-finite evaluation is a zero gradient and x goes back to best."""

    def __init__(self, x: torch.Tensor, lr: float, best: torch.Tensor | None = None):
        self.x = x
        self.best = best
        self.optimizer = torch.optim.Adam([x], lr=lr, betas=(0.9, 0.99))
        self.failures = torch.zeros((), dtype=torch.long, device=x.device)
        self.worst = torch.zeros_like(self.failures)

    def move(self, loss: torch.Tensor) -> torch.Tensor:
        x = self.x
        finite = torch.isfinite(loss) & torch.isfinite(x.grad).all()
        x.grad = torch.where(finite, x.grad, torch.zeros((), dtype=x.dtype, device=x.device))
        self.optimizer.step()
        with torch.no_grad():
            if self.best is not None:
                torch.where(finite, x, self.best, out=x)
            x.clamp_(0, 1)
        self.failures.add_(1).mul_(~finite)
        torch.maximum(self.worst, self.failures, out=self.worst)
        return loss


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
                          options={"maxfun": iterations + 1, "maxiter": iterations, "maxcor": LBFGSB_HISTORY,
                                   "ftol": 0.0, "gtol": 0.0})
        final = result.x
    except _Done:
        return  # x already holds the last evaluated point
    with torch.no_grad():
        x.copy_(torch.from_numpy(final).view(shape).to(x.device, dtype))
