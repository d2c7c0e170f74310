"""L-BFGS with a fixed step, one evaluation per step, in the compact representation.

It takes the same steps as torch.optim.LBFGS(lr, max_iter=1, history_size=m, no line
search, tolerances 0), computed differently. Torch's two-loop recursion makes 4m small
vector operations per step; here the inverse-Hessian product comes from two passes over
one (2m, n) buffer holding the s and y pairs (Byrd, Nocedal & Schnabel 1994; Nocedal &
Wright eq. 7.24):

    H g = γ g + S p − γ Y z,   z = R⁻¹ Sᵀg,   p = R⁻ᵀ((D + γ YᵀY) z − γ Yᵀg)

where R is the upper triangle of SᵀY (pairs oldest first), D its diagonal and
γ = sᵀy / yᵀy of the newest pair. One matrix product gives Sᵀg, Yᵀg and the new y's
inner products with the stored pairs at once; they and the step's scalars reach the host
in one transfer, and the m×m algebra runs there in float64.
With a full history a step costs 25–30 % less than torch's loop (both read the pairs
twice; docs/performance.md); the iterates agree to rounding (tests/test_lbfgs.py).
"""
from __future__ import annotations

from typing import Callable

import torch

CURVATURE_FLOOR = 1e-10  # torch's: a pair with sᵀy at or below it is not stored


class LBFGS:
    """step(evaluate) evaluates the objective at x (filling x.grad), then moves x in place.

    A step reads the device once: every number the host needs (the loss, the new pair's
    inner products, the products with the stored pairs) comes back in one transfer, and
    the directional derivative is derived from them instead of read back.
    """

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
    def step(self, evaluate: Callable[[], torch.Tensor]) -> float:
        """One evaluation and one move; returns the loss at the evaluated point (a float)."""
        with torch.enable_grad():
            loss = evaluate()
        grad = self.x.grad.reshape(-1)
        if self.direction is None:
            numbers = torch.stack([loss.float().reshape(()), grad.dot(grad), grad.abs().sum()]).double().cpu()
            value, gg, l1 = numbers.tolist()
            direction, slope = -grad, -gg
            step_size = min(1.0, 1.0 / l1) * self.lr if l1 else 0.0
        else:
            value, gg, direction, slope = self._direction(loss, grad)
            step_size = self.lr
        if gg == 0:  # a stationary point: torch stops here too
            return value
        self.previous_grad = grad.clone()
        self.direction, self.step_size = direction, step_size
        if slope <= 0:  # not a descent direction (slope > 0): torch does not move
            self.x.view(-1).add_(direction, alpha=step_size)
        return value

    def _direction(self, loss: torch.Tensor, grad: torch.Tensor) -> tuple[float, float, torch.Tensor, float]:
        """(loss, gᵀg, d = −H g, gᵀd), the pair from the last step added to the memory if sᵀy allows."""
        history = self.history
        s = self.direction * self.step_size
        y = grad - self.previous_grad
        stored = self.pairs[: 2 * len(self.order)]
        scalars = torch.stack([loss.float().reshape(()), grad.dot(grad), y.dot(s), y.dot(y), s.dot(grad), y.dot(grad)])
        with_stored = torch.stack([grad, y]) @ stored.T  # g and y · every stored s and y
        numbers = torch.cat([scalars.double(), with_stored.double().reshape(-1)]).cpu()  # the one read
        value, gg, ys, yy, sg, yg = numbers[:6].tolist()
        at_grad = torch.zeros(2 * history, dtype=torch.float64)  # Sᵀg and Yᵀg by slot, interleaved
        at_grad[: len(stored)] = numbers[6 : 6 + len(stored)]
        y_with = numbers[6 + len(stored) :]
        if ys > CURVATURE_FLOOR:
            slot = self.order.pop(0) if len(self.order) == history else len(self.order)
            kept = torch.tensor(self.order, dtype=torch.long)
            self.pairs[2 * slot] = s
            self.pairs[2 * slot + 1] = y
            # R needs s_iᵀy_j for older i only: the new pair's column (its row is never read).
            self.sy[kept, slot] = y_with[2 * kept]
            self.yy[kept, slot] = self.yy[slot, kept] = y_with[2 * kept + 1]
            self.sy[slot, slot], self.yy[slot, slot] = ys, yy
            at_grad[2 * slot], at_grad[2 * slot + 1] = sg, yg
            self.order.append(slot)
            self.gamma = ys / yy
        if not self.order:
            return value, gg, grad * -self.gamma, -self.gamma * gg
        order = torch.tensor(self.order)
        sy, yy_ordered = self.sy[order][:, order], self.yy[order][:, order]
        upper = sy.triu()
        s_grad, y_grad = at_grad[2 * order, None], at_grad[2 * order + 1, None]
        z = torch.linalg.solve_triangular(upper, s_grad, upper=True)
        inner = sy.diagonal()[:, None] * z + self.gamma * (yy_ordered @ z) - self.gamma * y_grad
        p = torch.linalg.solve_triangular(upper.T, inner, upper=False)
        weights = torch.zeros(2 * len(self.order), dtype=torch.float64)
        weights[2 * order] = -p[:, 0]
        weights[2 * order + 1] = self.gamma * z[:, 0]
        slope = -self.gamma * gg + float(weights @ at_grad[: len(weights)])  # gᵀd, d = −γ g + Σ w·pairs
        stored = self.pairs[: len(weights)]
        direction = torch.addmv(grad, stored.T, weights.to(grad.device, grad.dtype), beta=-self.gamma)
        return value, gg, direction, slope
