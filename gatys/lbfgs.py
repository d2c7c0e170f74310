"""L-BFGS with a fixed step, one evaluation per step, in the compact representation.

It takes the same steps as torch.optim.LBFGS(lr, max_iter=1, history_size=m, no line
search, tolerances 0), computed differently. Torch's two-loop recursion makes 4m small
vector operations per step; here the inverse-Hessian product comes from two passes over
one (2m, n) buffer holding the s and y pairs (Byrd, Nocedal & Schnabel 1994; Nocedal &
Wright eq. 7.24):

    H g = γ g + S p − γ Y z,   z = R⁻¹ Sᵀg,   p = R⁻ᵀ((D + γ YᵀY) z − γ Yᵀg)

where R is the upper triangle of SᵀY (pairs oldest first), D its diagonal and
γ = sᵀy / yᵀy of the newest pair. One matrix product gives Sᵀg, Yᵀg and the new y's
inner products with the stored pairs at once; the m×m algebra runs in float64 on the host.
With a full history a step costs 25–30 % less than torch's loop (both read the pairs
twice; docs/performance.md); the iterates agree to rounding (tests/test_lbfgs.py).
"""
from __future__ import annotations

from typing import Callable

import torch

CURVATURE_FLOOR = 1e-10  # torch's: a pair with sᵀy at or below it is not stored


class LBFGS:
    """step(evaluate) evaluates the objective at x (filling x.grad), then moves x in place."""

    def __init__(self, x: torch.Tensor, lr: float = 1.0, history: int = 100):
        self.x = x
        self.lr = lr
        self.history = history
        self.pairs = x.new_zeros((2 * history, x.numel()))  # slot j: s in row 2j, y in row 2j + 1
        self.sy = torch.zeros(history, history, dtype=torch.float64)  # s_iᵀ y_j by slot, i older
        self.yy = torch.zeros(history, history, dtype=torch.float64)  # y_iᵀ y_j by slot
        self.order: list[int] = []  # occupied slots, oldest pair first; slots fill from 0 up
        self.gamma = 1.0
        self.direction: torch.Tensor | None = None
        self.step_size = 0.0
        self.previous_grad: torch.Tensor | None = None

    @torch.no_grad()
    def step(self, evaluate: Callable[[], torch.Tensor]) -> torch.Tensor:
        with torch.enable_grad():
            loss = evaluate()
        grad = self.x.grad.reshape(-1)
        if not grad.any():  # a stationary point: torch stops here too
            return loss
        if self.direction is None:
            direction = -grad
            step_size = min(1.0, 1.0 / float(grad.abs().sum())) * self.lr
        else:
            direction = self._direction(grad)
            step_size = self.lr
        self.previous_grad = grad.clone()
        self.direction, self.step_size = direction, step_size
        if float(grad.dot(direction)) <= 0:  # not a descent direction: torch does not move
            self.x.view(-1).add_(direction, alpha=step_size)
        return loss

    def _direction(self, grad: torch.Tensor) -> torch.Tensor:
        """−H g with the pair from the last step added to the memory (if its curvature allows)."""
        s = self.direction * self.step_size
        y = grad - self.previous_grad
        ys = float(y.dot(s))
        if ys > CURVATURE_FLOOR:
            slot = self.order.pop(0) if len(self.order) == self.history else len(self.order)
            self.order.append(slot)
            self.pairs[2 * slot] = s
            self.pairs[2 * slot + 1] = y
            stored = self.pairs[: 2 * len(self.order)]
            products = (torch.stack([grad, y]) @ stored.T).double().cpu()  # (g, y) · every stored s and y
            # R needs s_iᵀy_j for older i only: the new pair's column (its row is never read).
            self.sy[: len(self.order), slot] = products[1, 0::2]
            self.yy[slot, : len(self.order)] = self.yy[: len(self.order), slot] = products[1, 1::2]
            self.gamma = ys / float(products[1, 2 * slot + 1])
            at_grad = products[0]
        else:
            stored = self.pairs[: 2 * len(self.order)]
            at_grad = (stored @ grad).double().cpu()
        if not self.order:
            return grad * -self.gamma
        order = torch.tensor(self.order)
        sy, yy = self.sy[order][:, order], self.yy[order][:, order]
        upper = sy.triu()
        z = torch.linalg.solve_triangular(upper, at_grad[2 * order, None], upper=True)
        inner = sy.diagonal()[:, None] * z + self.gamma * (yy @ z) - self.gamma * at_grad[2 * order + 1, None]
        p = torch.linalg.solve_triangular(upper.T, inner, upper=False)
        weights = torch.zeros(len(stored), dtype=torch.float64)
        weights[2 * order] = -p[:, 0]
        weights[2 * order + 1] = self.gamma * z[:, 0]
        return torch.addmv(grad, stored.T, weights.to(grad.device, grad.dtype), beta=-self.gamma)
