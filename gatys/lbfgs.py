"""L-BFGS with a fixed step, one evaluation per step, in the compact representation.

It takes the same steps as torch.optim.LBFGS(lr, max_iter=1, history_size=m, no line
search, tolerances 0), computed differently. Torch's two-loop recursion makes 4m small
vector operations per step; here the inverse-Hessian product comes from two passes over
one buffer holding the s and y pairs (Byrd, Nocedal & Schnabel 1994; Nocedal & Wright
eq. 7.24):

    H g = γ g + S p − γ Y z,   z = R⁻¹ Sᵀg,   p = R⁻ᵀ((D + γ YᵀY) z − γ Yᵀg)

where R is the upper triangle of SᵀY (pairs oldest first), D its diagonal and
γ = sᵀy / yᵀy of the newest pair. The buffer's first rows hold this step's s, g and y,
so one matrix product of (g, y) with the occupied rows gives every inner product the
step needs (sᵀg, gᵀg, sᵀy, yᵀy, Sᵀg, Yᵀg and the new y with the stored pairs); they and
the loss reach the host in one transfer, and the m×m algebra runs there in NumPy float64.
A step launches about ten device operations (torch's loop several hundred with a full
history), which matters on a GPU, where launching, not arithmetic, bounds a small image;
the iterates agree with torch's to rounding (tests/test_lbfgs.py).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np
import torch
from scipy.linalg import solve_triangular

CURVATURE_FLOOR = 1e-10  # torch's: a pair with sᵀy at or below it is not stored
S, G, Y = 0, 1, 2  # the buffer's rows of this step's s, g and y
FIRST_PAIR = 3  # slot j's s and y are in rows FIRST_PAIR + 2j and FIRST_PAIR + 2j + 1


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
        self.rows = x.new_zeros((FIRST_PAIR + 2 * history, x.numel()))  # s, g, y, then the pairs by slot
        self.sy = np.zeros((history, history))  # s_iᵀ y_j by slot, i older
        self.yy = np.zeros((history, history))  # y_iᵀ y_j by slot
        self.order: list[int] = []  # occupied slots, oldest pair first; slots fill from 0 up
        self.gamma = 1.0
        self.started = False
        self.step_size = 0.0
        self.direction = x.new_zeros(x.numel())

    @property
    def pairs(self) -> torch.Tensor:
        """The stored pairs by slot: s_j in row 2j, y_j in row 2j + 1."""
        return self.rows[FIRST_PAIR:]

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
            self.rows[G].copy_(grad)
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
        rows, count = self.rows, len(self.order)
        s = torch.mul(self.direction, self.step_size, out=rows[S])
        y = torch.sub(grad, rows[G], out=rows[Y])
        rows[G].copy_(grad)
        with _exact_float32():
            products = rows[G : Y + 1] @ rows[: FIRST_PAIR + 2 * count].T  # g and y · (s, g, y, every stored s and y)
        numbers = torch.cat([loss.reshape(1).to(products.dtype), products.reshape(-1)]).cpu().double().numpy()
        value = float(numbers[0])
        with_g, with_y = numbers[1:].reshape(2, -1)
        sg, gg, yg, ys, yy = with_g[S], with_g[G], with_g[Y], with_y[S], with_y[Y]
        if gg == 0:  # a stationary point: torch stops before storing the pair
            return value, None
        at_grad = np.zeros(2 * self.history)  # Sᵀg and Yᵀg by slot, interleaved
        at_grad[: 2 * count] = with_g[FIRST_PAIR:]
        y_with = with_y[FIRST_PAIR:]  # the new y with each stored s and y
        if ys > CURVATURE_FLOOR:
            slot = self.order.pop(0) if count == self.history else count
            kept = np.array(self.order, dtype=np.int64)
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
        order = np.array(self.order, dtype=np.int64)
        sy, yy_ordered = self.sy[np.ix_(order, order)], self.yy[np.ix_(order, order)]
        upper = np.triu(sy)
        z = solve_triangular(upper, at_grad[2 * order], lower=False, check_finite=False)
        inner = sy.diagonal() * z + self.gamma * (yy_ordered @ z) - self.gamma * at_grad[2 * order + 1]
        p = solve_triangular(upper.T, inner, lower=True, check_finite=False)
        weights = np.zeros(2 * len(order))
        weights[2 * order] = -p
        weights[2 * order + 1] = self.gamma * z
        stored = self.pairs[: len(weights)]
        torch.addmv(grad, stored.T, torch.from_numpy(weights).to(grad.device, grad.dtype), beta=-self.gamma,
                    out=self.direction)
        return value, -self.gamma * gg + float(weights @ at_grad[: len(weights)])  # gᵀd, d = −γ g + Σ w·pairs


@contextlib.contextmanager
def _exact_float32() -> Iterator[None]:
    """Float32 matrix products in full float32: TF32 (on by default on CUDA here) would round the
    inner products the curvature pairs are built from to 10 bits."""
    matmul = torch.backends.cuda.matmul
    previous = matmul.allow_tf32
    matmul.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32 = previous
