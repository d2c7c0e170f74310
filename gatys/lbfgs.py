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
    the directional derivative is derived from them instead of read back. All vectors
    live in buffers allocated here, so a step allocates nothing of x's size.
    """

    def __init__(self, x: torch.Tensor, lr: float = 1.0, history: int = 100):
        self.x = x
        self.lr = lr
        self.history = history
        size = x.numel()
        self.pairs = x.new_zeros((2 * history, size))  # slot j: s in row 2j, y in row 2j + 1
        self.sy = torch.zeros(history, history, dtype=torch.float64)  # s_iᵀ y_j by slot, i older
        self.yy = torch.zeros(history, history, dtype=torch.float64)  # y_iᵀ y_j by slot
        self.order: list[int] = []  # occupied slots, oldest pair first; slots fill from 0 up
        self.gamma = 1.0
        self.started = False
        self.step_size = 0.0
        self.grads = x.new_zeros((2, size))  # the last evaluated gradient, then the new y
        self.direction = x.new_zeros(size)
        self.scratch = x.new_zeros(size)  # s = step_size · direction

    @torch.no_grad()
    def step(self, evaluate: Callable[[], torch.Tensor]) -> float:
        """One evaluation and one move; returns the loss at the evaluated point (a float)."""
        with torch.enable_grad():
            loss = evaluate()
        grad = self.x.grad.reshape(-1)
        if not self.started:
            numbers = torch.stack([loss.float().reshape(()), grad.dot(grad), grad.abs().sum()]).double().cpu()
            value, gg, l1 = numbers.tolist()
            if gg == 0:  # a stationary point: torch stops here too
                return value
            torch.neg(grad, out=self.direction)
            self.grads[0].copy_(grad)
            slope, self.step_size, self.started = -gg, min(1.0, 1.0 / l1) * self.lr, True
        else:
            value, slope = self._update(loss, grad)
            if slope is None:
                return value
            self.step_size = self.lr
        if slope <= 0:  # not a descent direction (slope > 0): torch does not move
            self.x.view(-1).add_(self.direction, alpha=self.step_size)
        return value

    def _update(self, loss: torch.Tensor, grad: torch.Tensor) -> tuple[float, float | None]:
        """Store the last step's pair if sᵀy allows, set direction = −H g; (loss, gᵀd), gᵀd None if g = 0."""
        history = self.history
        s = torch.mul(self.direction, self.step_size, out=self.scratch)
        y = torch.sub(grad, self.grads[0], out=self.grads[1])
        self.grads[0].copy_(grad)
        stored = self.pairs[: 2 * len(self.order)]
        scalars = torch.stack([loss.float().reshape(()), grad.dot(grad), y.dot(s), y.dot(y), s.dot(grad), y.dot(grad)])
        with_stored = self.grads @ stored.T  # g and y · every stored s and y
        numbers = torch.cat([scalars.double(), with_stored.double().reshape(-1)]).cpu()  # the one read
        value, gg, ys, yy, sg, yg = numbers[:6].tolist()
        if gg == 0:  # a stationary point: torch stops before storing the pair
            return value, None
        at_grad = torch.zeros(2 * history, dtype=torch.float64)  # Sᵀg and Yᵀg by slot, interleaved
        at_grad[: len(stored)] = numbers[6 : 6 + len(stored)]
        y_with = numbers[6 + len(stored) :]
        if ys > CURVATURE_FLOOR:
            slot = self.order.pop(0) if len(self.order) == history else len(self.order)
            kept = torch.tensor(self.order, dtype=torch.long)
            self.pairs[2 * slot].copy_(s)
            self.pairs[2 * slot + 1].copy_(y)
            # R needs s_iᵀy_j for older i only: the new pair's column (its row is never read).
            self.sy[kept, slot] = y_with[2 * kept]
            self.yy[kept, slot] = self.yy[slot, kept] = y_with[2 * kept + 1]
            self.sy[slot, slot], self.yy[slot, slot] = ys, yy
            at_grad[2 * slot], at_grad[2 * slot + 1] = sg, yg
            self.order.append(slot)
            self.gamma = ys / yy
        if not self.order:
            torch.mul(grad, -self.gamma, out=self.direction)
            return value, -self.gamma * gg
        order = torch.tensor(self.order)
        sy, yy_ordered = self.sy[order][:, order], self.yy[order][:, order]
        upper = sy.triu()
        z = torch.linalg.solve_triangular(upper, at_grad[2 * order, None], upper=True)
        inner = sy.diagonal()[:, None] * z + self.gamma * (yy_ordered @ z) - self.gamma * at_grad[2 * order + 1, None]
        p = torch.linalg.solve_triangular(upper.T, inner, upper=False)
        weights = torch.zeros(2 * len(self.order), dtype=torch.float64)
        weights[2 * order] = -p[:, 0]
        weights[2 * order + 1] = self.gamma * z[:, 0]
        stored = self.pairs[: len(weights)]
        torch.addmv(grad, stored.T, weights.to(grad.device, grad.dtype), beta=-self.gamma, out=self.direction)
        return value, -self.gamma * gg + float(weights @ at_grad[: len(weights)])  # gᵀd, d = −γ g + Σ w·pairs
