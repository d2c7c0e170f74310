"""mmd-gaussian:sigma=li2017: the linear-time estimator with Li et al.'s bandwidth, against a numpy port
of their reference code (`mmd_loss.py`), value and gradient, in float64."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import losses
from losses.functional import random_indices


def reference(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, float]:
    """(Σ_p h_p, ∂Σh/∂x with γ held fixed, γ) for rows already in the estimator's order (Li et al.'s forward
    and backward: their backward is half this gradient)."""
    n0 = min(len(x), len(y)) - min(len(x), len(y)) % 2
    x0, x1, y0, y1 = x[0:n0:2], x[1:n0:2], y[0:n0:2], y[1:n0:2]
    dxx, dyy = ((x0 - x1) ** 2).sum(1), ((y0 - y1) ** 2).sum(1)
    dxy, dyx = ((x0 - y1) ** 2).sum(1), ((y0 - x1) ** 2).sum(1)
    gamma = n0 * 2 / (dxx.sum() + dyy.sum() + dxy.sum() + dyx.sum())
    kxx, kyy, kxy, kyx = (np.exp(-gamma * d) for d in (dxx, dyy, dxy, dyx))
    total = kxx.sum() + kyy.sum() - kxy.sum() - kyx.sum()
    grad = np.zeros_like(x)
    grad[0:n0:2] = 2 * gamma * (-kxx[:, None] * (x0 - x1) + kxy[:, None] * (x0 - y1))
    grad[1:n0:2] = 2 * gamma * (-kxx[:, None] * (x1 - x0) + kyx[:, None] * (x1 - y0))
    return total, grad, gamma


@pytest.mark.parametrize("shapes", [((5, 7), (5, 7)), ((6, 6), (4, 5))])
def test_value_and_gradient_equal_the_reference_code_s(shapes, generator):
    channels = 6
    feats = torch.randn(1, channels, *shapes[0], generator=generator, dtype=torch.float64).relu_()
    style = torch.randn(1, channels, *shapes[1], generator=generator, dtype=torch.float64).relu_() * 2
    loss = losses.create("mmd-gaussian:sigma=li2017,estimator=linear,seed=3")
    feats.requires_grad_(True)
    value = loss(feats, loss.target(style))
    (grad,) = torch.autograd.grad(value, feats)

    x_rows = feats.detach()[0].flatten(1).T.numpy()
    y_rows = style[0].flatten(1).T.numpy()
    order_x = random_indices(len(x_rows), None, 2 * 3).numpy()      # the loss's fixed pairing for seed 3
    order_y = random_indices(len(y_rows), None, 2 * 3 + 1).numpy()
    total, reference_grad, _ = reference(x_rows[order_x], y_rows[order_y])
    pairs = min(len(x_rows), len(y_rows)) // 2
    assert float(value.detach()) == pytest.approx(total / (pairs * channels), rel=1e-12)
    expected = np.zeros_like(x_rows)
    expected[order_x] = reference_grad / (pairs * channels)  # back to the positions' own order
    assert np.allclose(grad[0].flatten(1).T.numpy(), expected, rtol=1e-10, atol=1e-14)


def test_the_bandwidth_follows_both_sets_so_scaling_them_changes_nothing(generator):
    feats = torch.rand(1, 4, 6, 6, generator=generator, dtype=torch.float64)
    style = torch.rand(1, 4, 6, 6, generator=generator, dtype=torch.float64)
    loss = losses.create("mmd-gaussian:sigma=li2017,estimator=linear")
    assert float(loss(feats * 10, loss.target(style * 10))) == pytest.approx(float(loss(feats, loss.target(style))),
                                                                             rel=1e-12)
    fixed = losses.create("mmd-gaussian:sigma=0.3,estimator=linear")
    assert float(fixed(feats * 10, fixed.target(style * 10))) != pytest.approx(float(fixed(feats, fixed.target(style))))


@pytest.mark.parametrize("spec", ["mmd-gaussian:sigma=li2017", "mmd-gaussian:sigma=li2017,estimator=unbiased",
                                  "mmd-gaussian:sigma=li2017+1,estimator=linear"])
def test_li2017_needs_the_linear_estimator_and_stands_alone(spec):
    with pytest.raises(ValueError, match="li2017"):
        losses.create(spec)
