"""Stop when done: a scale ends once its best objective stops improving, with --iterations as the ceiling."""
from __future__ import annotations

import torch

from gatys.optimize import GUARD_EVERY, run


def _quadratic(x: torch.Tensor):
    def evaluate() -> torch.Tensor:
        x.grad = None
        loss = (x - 0.3).square().sum()
        loss.backward()
        return loss.detach()
    return evaluate


def test_the_optimizer_asks_every_guard_interval_and_stops_when_told():
    x = torch.zeros(5, requires_grad=True)
    asked = []

    def converged() -> bool:
        asked.append(True)
        return len(asked) == 2

    assert run("adam", x, _quadratic(x), 10 * GUARD_EVERY, converged=converged) == "converged"
    assert len(asked) == 2
    assert run("adam", x, _quadratic(x), GUARD_EVERY + 3, converged=lambda: False) == "budget"


def test_a_run_converges_at_a_large_tolerance_and_runs_its_budget_at_zero(transfer, content_path, style_path):
    budget = 3 * GUARD_EVERY
    loose = transfer.run(content_path, style_path, iterations=budget, tolerance=0.9, size=24)
    assert loose.trace[0]["stopped_because"] == "converged"
    assert len(loose.trace[0]["losses"]["total"]) == 2 * GUARD_EVERY  # the first check only remembers
    full = transfer.run(content_path, style_path, iterations=budget, tolerance=0.0, size=24)
    assert full.trace[0]["stopped_because"] == "budget" and len(full.trace[0]["losses"]["total"]) == budget


def test_the_rule_compares_the_best_objective_over_the_window(transfer, content_path, style_path):
    """Converged exactly when the best objective fell by at most `tolerance` of itself since the last check."""
    result = transfer.run(content_path, style_path, iterations=4 * GUARD_EVERY, tolerance=0.01, size=24)
    totals = result.trace[0]["losses"]["total"]
    best = [min(totals[: (k + 1) * GUARD_EVERY]) for k in range(len(totals) // GUARD_EVERY)]
    gains = [(before - after) / before for before, after in zip(best, best[1:])]
    stopped = result.trace[0]["stopped_because"] == "converged"
    assert stopped == (gains[-1] <= 0.01 and len(totals) < 4 * GUARD_EVERY)
    assert all(gain > 0.01 for gain in gains[:-1])
