"""gatys.fast.lbfgs against torch.optim.LBFGS: the same iterates, in float64, step by step."""
from __future__ import annotations

import pytest
import torch

from gatys import optimize
from gatys.fast.lbfgs import LBFGS


def quadratic(x: torch.Tensor) -> torch.Tensor:
    curvature = torch.logspace(-2, 1, x.numel(), dtype=x.dtype).view_as(x)
    return 0.5 * (curvature * (x - 0.3) ** 2).sum()


def wavy(x: torch.Tensor) -> torch.Tensor:
    """Non-convex: steps across negative curvature give pairs with sᵀy < 0, which L-BFGS skips."""
    return (torch.sin(3 * x) + 0.1 * x**2).sum()


def trajectories(function, steps: int, history: int, lr: float):
    generator = torch.Generator().manual_seed(0)
    start = 0.2 + 0.6 * torch.rand(3, 4, 5, generator=generator, dtype=torch.float64)  # where sin(3x) is concave
    ours, theirs = start.clone().requires_grad_(), start.clone().requires_grad_()
    optimizer = LBFGS(ours, lr=lr, history=history)
    reference = torch.optim.LBFGS([theirs], lr=lr, max_iter=1, history_size=history,
                                  tolerance_grad=0.0, tolerance_change=0.0)

    def closure(x):
        def evaluate():
            x.grad = None
            loss = function(x)
            loss.backward()
            return loss.detach()
        return evaluate

    path, reference_path = [], []
    for _ in range(steps):
        optimizer.step(closure(ours))
        reference.step(closure(theirs))
        path.append(ours.detach().clone())
        reference_path.append(theirs.detach().clone())
    return optimizer, path, reference_path


@pytest.mark.parametrize("history", [100, 4])  # 4: the memory wraps around many times
def test_same_iterates_as_torch_on_a_quadratic(history):
    _, path, reference = trajectories(quadratic, steps=40, history=history, lr=1.0)
    for ours, theirs in zip(path, reference):
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-11)
    assert quadratic(path[-1]) < 1e-3 * quadratic(path[0])


@pytest.mark.parametrize("history", [100, 4])  # 4: skipped pairs while the ring wraps around
def test_same_iterates_as_torch_where_curvature_pairs_are_skipped(history):
    optimizer, path, reference = trajectories(wavy, steps=40, history=history, lr=0.5)
    for ours, theirs in zip(path, reference):
        torch.testing.assert_close(ours, theirs, rtol=1e-8, atol=1e-10)
    assert int(optimizer.count) < min(history + 1, 39)  # of 39 pairs offered, some had sᵀy ≤ 0 and were skipped
    assert wavy(path[-1]) < wavy(path[0])


def test_float32_state_stays_on_the_tensor_and_lowers_the_loss():
    x = torch.full((2, 3), 2.0, requires_grad=True)
    optimizer = LBFGS(x, history=3)

    def evaluate():
        x.grad = None
        loss = quadratic(x)
        loss.backward()
        return loss.detach()

    first = evaluate().item()
    for _ in range(10):
        optimizer.step(evaluate)
    assert optimizer.pairs.dtype == torch.float32 and evaluate().item() < 1e-2 * first


def test_no_move_along_an_ascent_direction(monkeypatch):
    """Like torch (gtd > 0: break), a non-descent direction is not followed."""
    x = torch.full((2, 3), 2.0, requires_grad=True)
    optimizer = LBFGS(x)

    def evaluate():
        x.grad = None
        loss = quadratic(x)
        loss.backward()
        return loss.detach()

    optimizer.step(evaluate)
    optimizer.step(evaluate)
    moved = x.detach().clone()
    real = optimizer._coefficients
    monkeypatch.setattr(optimizer, "_coefficients", lambda pairs, gg: (real(pairs, gg)[0], gg))  # slope gᵀg > 0: ascent
    optimizer.step(evaluate)
    assert torch.equal(x.detach(), moved)
    monkeypatch.undo()
    optimizer.step(evaluate)
    assert not torch.equal(x.detach(), moved)  # the real direction is followed again


def _evaluations_with_nan(x: torch.Tensor, bad: set[int], seen: list | None = None):
    """evaluate() for optimize.run on the quadratic, returning NaN (loss and gradient) at the evaluations in `bad`;
    `seen` collects the points evaluated."""
    count = 0

    def evaluate():
        nonlocal count
        count += 1
        if seen is not None:
            seen.append(x.detach().clone())
        x.grad = None
        loss = quadratic(x)
        loss.backward()
        if count in bad:
            x.grad.fill_(float("nan"))
            return torch.tensor(float("nan"))
        return loss.detach()

    return evaluate


def test_nan_guard_restores_the_best_image_and_restarts():
    x = torch.full((2, 3), 2.0, requires_grad=True)
    best = torch.ones(2, 3)  # what the engine's best-image tracking would hold
    seen = []
    optimize.run("lbfgs", x, _evaluations_with_nan(x, {4}, seen), iterations=20, best=best)
    assert torch.equal(seen[4], best)  # the evaluation after the NaN is at the best image
    at_best = best.clone().requires_grad_()
    quadratic(at_best).backward()
    first_step = best - min(1.0, 1.0 / at_best.grad.abs().sum().item()) * at_best.grad  # a fresh L-BFGS's step
    torch.testing.assert_close(seen[5], first_step)
    assert torch.isfinite(x).all() and quadratic(x) < 1e-3 * quadratic(torch.full((2, 3), 2.0))


def test_after_the_nan_guard_the_run_goes_on_as_a_fresh_one_from_the_best_image():
    x = torch.full((3, 4, 5), 2.0, dtype=torch.float64, requires_grad=True)
    best = torch.full((3, 4, 5), 0.9, dtype=torch.float64)
    seen = []
    optimize.run("lbfgs", x, _evaluations_with_nan(x, {10}, seen), iterations=20, best=best)
    fresh, fresh_seen = best.clone().requires_grad_(), []
    optimize.run("lbfgs", fresh, _evaluations_with_nan(fresh, set(), fresh_seen), iterations=10)
    for ours, theirs in zip(seen[10:], fresh_seen, strict=True):  # memory, γ and step size all start afresh
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


def test_after_a_non_finite_loss_the_steps_are_a_fresh_optimizer_s():
    start, best = torch.full((3, 4, 5), 2.0, dtype=torch.float64), torch.full((3, 4, 5), 0.9, dtype=torch.float64)
    x, fresh = start.clone().requires_grad_(), best.clone().requires_grad_()
    optimizer = LBFGS(x, history=3, fallback=best)
    seen = []
    evaluate = _evaluations_with_nan(x, {9}, seen)  # the memory has wrapped around by then
    for _ in range(20):
        optimizer.step(evaluate)
    reference = LBFGS(fresh, history=3)
    reference_seen = []
    evaluate_fresh = _evaluations_with_nan(fresh, set(), reference_seen)
    for _ in range(11):
        reference.step(evaluate_fresh)
    for ours, theirs in zip(seen[9:], reference_seen):  # memory, γ and step size all start afresh
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    assert int(optimizer.failures) == 0 and int(optimizer.worst) == 1


def test_a_step_reads_nothing_back_from_the_device():
    """On the meta device a tensor has no values, so any read (.item(), a bool, a copy to the host) raises."""
    x = torch.full((3, 8, 8), 2.0, device="meta", requires_grad=True)
    optimizer = LBFGS(x, history=2, fallback=torch.ones_like(x))

    def evaluate():
        x.grad = None
        loss = (x - 0.3).square().sum()
        loss.backward()
        return loss.detach()

    for _ in range(6):  # past the first step, with pairs stored and the ring wrapped around
        loss = optimizer.step(evaluate)
    assert loss.device.type == "meta" and optimizer.direction.device.type == "meta"
    with pytest.raises((RuntimeError, NotImplementedError)):  # the check itself: a read does raise
        bool(optimizer.started)


def test_nan_guard_gives_up_on_a_second_non_finite_loss_in_a_row():
    x = torch.full((2, 3), 2.0, requires_grad=True)
    with pytest.raises(FloatingPointError, match="not finite"):
        optimize.run("lbfgs", x, _evaluations_with_nan(x, {4, 5}), iterations=20, best=x.detach().clone())
    fresh = torch.full((2, 3), 2.0, requires_grad=True)
    with pytest.raises(FloatingPointError, match="not finite"):  # and at once without a best image to go back to
        optimize.run("lbfgs", fresh, _evaluations_with_nan(fresh, {1}), iterations=3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_step_never_waits_for_the_device():
    x = torch.full((3, 8, 8), 2.0, device="cuda", requires_grad=True)
    optimizer = LBFGS(x, history=4, fallback=torch.ones_like(x))

    def evaluate():
        x.grad = None
        loss = quadratic(x)
        loss.backward()
        return loss.detach()

    torch.cuda.set_sync_debug_mode("error")  # any host read of the device raises
    try:
        for _ in range(12):
            optimizer.step(evaluate)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert quadratic(x).item() < 1e-2 * quadratic(torch.full_like(x, 2.0)).item()
