"""Batched runs: several runs optimised together, each with its own objective and optimizer.

The contract is that a run's result in a batch is its result alone: same iterates, same
losses, same stopping, whatever else shares the batch. On a GPU one network pass serves the
batch and "the same" means to rounding; on the CPU, where these tests run, each image is
evaluated as it would be alone, so the results must be identical, bit for bit (a shared pass
drifted on CI's oneDNN, and only exact equality catches a return to it).
"""
from __future__ import annotations

import pytest
import torch

import losses
from gatys.batch import batch_key, chunks, evaluate_batch
from gatys.config import TransferConfig

TINY = dict(size=32, iterations=12, init="noise", tolerance=0.0, precision="fp32", device="cpu")


def _alone_and_batched(transfer, content, style, configs):
    alone = [transfer.run(content, style, config=config) for config in configs]
    batched = transfer.run_batch([(content, style, config) for config in configs])
    return alone, batched


def _assert_same_run(alone, batched):
    assert [len(s["losses"]["total"]) for s in batched.trace] == [len(s["losses"]["total"]) for s in alone.trace]
    assert [s["stopped_because"] for s in batched.trace] == [s["stopped_because"] for s in alone.trace]
    for mine, theirs in zip(batched.trace, alone.trace):
        torch.testing.assert_close(torch.tensor(mine["losses"]["total"]), torch.tensor(theirs["losses"]["total"]),
                                   rtol=0, atol=0)
    assert torch.equal(batched.image, alone.image)


def test_a_batch_of_three_seeds_gives_each_run_alone(transfer, content_path, style_path):
    configs = [TransferConfig(**TINY, seed=seed) for seed in (0, 1, 2)]
    alone, batched = _alone_and_batched(transfer, content_path, style_path, configs)
    for one, many in zip(alone, batched):
        _assert_same_run(one, many)
    # the seeds really differ, so the comparison above would see runs swapped or mixed
    assert (alone[0].image - alone[1].image).abs().max() > 0.05


def test_a_batch_of_different_losses_and_budgets_over_two_scales(transfer, content_path, style_path):
    configs = [TransferConfig(**{**TINY, "scales": (24, 32), "iterations": iterations}, style_losses=(loss,), seed=3)
               for loss, iterations in [("gram", (6, 4)), ("moments", (9, 3)), ("mmd-gaussian:samples=64", (5, 7))]]
    alone, batched = _alone_and_batched(transfer, content_path, style_path, configs)
    for one, many in zip(alone, batched):
        _assert_same_run(one, many)
    assert [len(s["losses"]["total"]) for s in batched[1].trace] == [9, 3]


def test_adam_with_resampling_in_a_batch(transfer, content_path, style_path):
    configs = [TransferConfig(**TINY, optimizer="adam", resample=True, style_losses=("sliced-wasserstein",), seed=seed)
               for seed in (4, 5)]
    alone, batched = _alone_and_batched(transfer, content_path, style_path, configs)
    for one, many in zip(alone, batched):
        _assert_same_run(one, many)


def test_each_run_converges_on_its_own(transfer, content_path, style_path):
    """A run that converges leaves the batch; the others go on to their own ends."""
    configs = [TransferConfig(**{**TINY, "iterations": 150, "tolerance": tolerance}, seed=1) for tolerance in (0.5, 0.0)]
    alone, batched = _alone_and_batched(transfer, content_path, style_path, configs)
    assert batched[0].trace[0]["stopped_because"] == "converged" and len(batched[0].trace[0]["losses"]["total"]) < 150
    assert batched[1].trace[0]["stopped_because"] == "budget" and len(batched[1].trace[0]["losses"]["total"]) == 150
    for one, many in zip(alone, batched):
        assert len(many.trace[0]["losses"]["total"]) == len(one.trace[0]["losses"]["total"])


def test_a_run_that_fails_ends_alone(transfer, content_path, style_path, monkeypatch):
    """A Gram run whose objective turns NaN for good stops with its best image; the moments run beside it is untouched."""
    configs = [TransferConfig(**{**TINY, "iterations": 60}, style_losses=(loss,), seed=2) for loss in ("gram", "moments")]
    moments_alone = transfer.run(content_path, style_path, config=configs[1])
    original = losses.gram.GramLoss.scaled
    calls = {"count": 0}

    def scaled(self, feats, scale, target):
        calls["count"] += feats.requires_grad
        value = original(self, feats, scale, target)
        return value * float("nan") if feats.requires_grad and calls["count"] > 10 else value  # from evaluation 3

    monkeypatch.setattr(losses.gram.GramLoss, "scaled", scaled)
    gram, moments = transfer.run_batch([(content_path, style_path, config) for config in configs])
    assert "not finite" in gram.stopped and gram.trace[0]["non_finite_evaluations"] >= 2
    assert torch.isfinite(gram.image).all()
    assert moments.stopped is None
    _assert_same_run(moments_alone, moments)


def test_callbacks_see_their_own_run(transfer, content_path, style_path):
    seen = {0: [], 1: []}
    configs = [TransferConfig(**{**TINY, "iterations": iterations}) for iterations in (3, 5)]
    transfer.run_batch([(content_path, style_path, config) for config in configs],
                       [lambda p: seen[0].append(p.iteration), lambda p: seen[1].append(p.iteration)])
    assert seen == {0: [1, 2, 3], 1: [1, 2, 3, 4, 5]}


def test_runs_that_cannot_share_a_batch_are_refused(transfer, content_path, style_path, image_dir):
    base = TransferConfig(**TINY)
    with pytest.raises(ValueError, match="share"):
        transfer.run_batch([(content_path, style_path, base), (content_path, style_path, base.replace(size=40))])
    with pytest.raises(ValueError, match="share"):
        transfer.run_batch([(content_path, style_path, base.replace(optimizer="lbfgsb"))] * 2)
    with pytest.raises(ValueError, match="one shape"):
        transfer.run_batch([(content_path, style_path, base), (style_path, style_path, base)])
    assert batch_key(base.replace(optimizer="lbfgsb")) is None
    assert batch_key(base.replace(seed=9, style_losses=("moments",))) == batch_key(base)


@pytest.mark.parametrize("one_pass", [True, False], ids=["one network pass", "a pass per image"])
def test_evaluate_batch_gives_each_objective_its_own_value_and_gradient(transfer, content_path, style_path, one_pass):
    """Both ways of evaluating a batch: one pass over it (as on a GPU) and a pass per image (the CPU's default)."""
    config = TransferConfig(**TINY)
    objectives = [transfer.objective(content_path, style_path, config=config.replace(style_losses=(loss,), **layers))
                  for loss, layers in [("gram", {}), ("moments", {"style_layers": ("relu1_1", "relu2_1")})]]
    xs = [torch.rand(1, 3, *objectives[0].image_shape, generator=torch.Generator().manual_seed(k), requires_grad=True)
          for k in range(2)]
    results = evaluate_batch(objectives, xs, one_pass)
    # one pass rounds as a batched convolution does; a pass per image is the run alone, exactly
    value_tolerance, gradient_tolerance = ((dict(rtol=1e-5, atol=0), dict(rtol=1e-4, atol=1e-7)) if one_pass
                                           else (dict(rtol=0, atol=0), dict(rtol=0, atol=0)))
    for objective, x, (total, _) in zip(objectives, xs, results):
        alone = x.detach().clone().requires_grad_(True)
        value, _ = objective(alone)
        value.backward()
        torch.testing.assert_close(total, value.detach(), **value_tolerance)
        torch.testing.assert_close(x.grad, alone.grad, **gradient_tolerance)


def test_chunks_keep_order_and_size():
    assert list(chunks(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks([], 3)) == []
