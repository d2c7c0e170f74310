"""L-BFGS with a fixed step, one evaluation per step, in the compact representation, on the device.

It takes the same steps as torch.optim.LBFGS(lr, max_iter=1, history_size=m, no line
search, tolerances 0), computed differently. Torch's two-loop recursion makes 4m small
vector operations per step and reads scalars back to the host; here the inverse-Hessian
product comes from two passes over one buffer holding the s and y pairs (Byrd, Nocedal &
Schnabel 1994; Nocedal & Wright eq. 7.24):

    H g = γ g + S p − γ Y z,   z = R⁻¹ Sᵀg,   p = R⁻ᵀ((D + γ YᵀY) z − γ Yᵀg)

where R is the upper triangle of SᵀY (pairs oldest first), D its diagonal and
γ = sᵀy / yᵀy of the newest pair. The buffer's first rows hold this step's s, y and g,
so one matrix product of (y, g) with all rows gives every inner product the step needs.
Everything else is m×m algebra, done on the device as well: nothing is read back, so a
step never waits for the device, and the host can queue the next evaluation while the
device runs this one. What the host version decided with `if` (store the pair when
sᵀy > 0, move only along a descent direction, stop at a zero gradient, start afresh after
a non-finite loss) is decided by masks; the pairs live in a ring of m slots, oldest first
from `(accepted − count) mod m`, and empty slots are masked out of R (identity) and of
the products (zero). The iterates agree with torch's to rounding (tests/test_lbfgs.py).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

CURVATURE_FLOOR = 1e-10  # torch's: a pair with sᵀy at or below it is not stored
S, Y, G = 0, 1, 2  # the buffer's rows of this step's s, y and g
FIRST_PAIR = 3  # slot j's s and y are in rows FIRST_PAIR + 2j and FIRST_PAIR + 2j + 1; a rejected pair
# goes to the two rows after the last slot, which no product reads


class LBFGS:
    """step(evaluate) evaluates the objective at x (filling x.grad), then moves x in place.

    A step returns the loss as a device tensor and reads nothing back. A non-finite loss
    (or gradient) moves x back to `fallback` (when given: the engine's best image) and
    restarts the memory; `failures` counts such evaluations in a row and `worst` the
    longest run of them, both device tensors for the caller to read when it likes.
    """

    def __init__(self, x: torch.Tensor, lr: float = 1.0, history: int = 100, fallback: torch.Tensor | None = None):
        self.x = x
        self.lr = lr
        self.history = history
        self.fallback = fallback
        device, dtype = x.device, x.dtype
        self.rows = x.new_zeros((FIRST_PAIR + 2 * history + 2, x.numel()))  # s, y, g, the pairs by slot, spare
        self.used = self.rows[: FIRST_PAIR + 2 * history]
        wide = {"device": device, "dtype": torch.float64}
        self.sy = torch.zeros(history, history, **wide)  # s_iᵀ y_j by slot, i older
        self.yy = torch.zeros(history, history, **wide)  # y_iᵀ y_j by slot
        self.at_grad = torch.zeros(2 * history, **wide)  # Sᵀg and Yᵀg by slot, interleaved
        self.gamma = torch.ones((), **wide)
        self.accepted = torch.zeros((), dtype=torch.long, device=device)  # pairs stored since the start
        self.count = torch.zeros((), dtype=torch.long, device=device)  # pairs in memory (≤ history)
        self.fresh = torch.ones((), dtype=torch.bool, device=device)  # the next step starts the method
        self.failures = torch.zeros((), dtype=torch.long, device=device)
        self.worst = torch.zeros((), dtype=torch.long, device=device)
        self.step_size = torch.zeros((), dtype=dtype, device=device)
        self.direction = x.new_zeros(x.numel())
        self.slots = torch.arange(history, device=device)
        self.eye = torch.eye(history, **wide)

    @property
    def pairs(self) -> torch.Tensor:
        """The stored pairs by slot: s_j in row 2j, y_j in row 2j + 1."""
        return self.used[FIRST_PAIR:]

    @torch.no_grad()
    def step(self, evaluate: Callable[[], torch.Tensor]) -> torch.Tensor:
        """One evaluation and one move; returns the loss at the evaluated point (a device tensor)."""
        with torch.enable_grad():
            loss = evaluate()
        grad = self.x.grad.reshape(-1)
        rows = self.rows
        torch.mul(self.direction, self.step_size, out=rows[S])  # the last move
        torch.sub(grad, rows[G], out=rows[Y])
        rows[G].copy_(grad)
        with _exact_float32():
            products = (rows[Y : G + 1] @ self.used.T).double()  # y and g · (s, y, g, every slot's s and y)
        with_y, with_g = products
        ys, yy, sg, yg, gg = with_y[S], with_y[Y], with_g[S], with_g[Y], with_g[G]
        finite = torch.isfinite(loss.reshape(())) & torch.isfinite(gg)
        stationary = gg == 0  # torch stops at a zero gradient: no pair, no move
        accept = finite & ~self.fresh & ~stationary & (ys > CURVATURE_FLOOR)
        self._store(accept, ys, yy, sg, yg, with_y[FIRST_PAIR:], with_g[FIRST_PAIR:])
        first = self.fresh  # the method's first step: steepest descent (memory empty, γ = 1), torch's step size
        gamma = torch.where(first, 1.0, self.gamma)
        weights, slope = self._weights(gg, gamma)
        new_direction = torch.mv(self.pairs.T, weights.to(grad.dtype))
        new_direction.addcmul_(grad, -gamma.to(grad.dtype))
        keep = stationary | ~finite
        torch.where(keep, self.direction, new_direction, out=self.direction)
        first_size = torch.clamp(1.0 / grad.abs().sum(), max=1.0) * self.lr
        self.step_size.copy_(torch.where(keep, self.step_size, torch.where(first, first_size, self.lr)))
        move = finite & ~stationary & (slope <= 0)  # torch does not follow a non-descent direction
        self.x.view(-1).addcmul_(self.direction, torch.where(move, self.step_size, 0.0))
        self._recover(finite, stationary)
        return loss

    def _store(self, accept, ys, yy, sg, yg, y_with, g_with) -> None:
        """The new pair into the ring's next slot when `accept`; Sᵀg, Yᵀg for the current g."""
        slot = self.accepted % self.history
        first_row = torch.where(accept, 2 * slot, 2 * self.history)  # else the spare rows
        self.rows[FIRST_PAIR:].index_copy_(0, first_row + torch.arange(2, device=slot.device), self.rows[S : Y + 1])
        here = self.slots == slot
        # The new pair's column of SᵀY and YᵀY (R needs s_iᵀy_j for older i only; its row is never read).
        sy_column = torch.where(here, ys, y_with[0::2])
        yy_column = torch.where(here, yy, y_with[1::2])
        self.sy.copy_(torch.where(accept & here, sy_column[:, None], self.sy))
        self.yy.copy_(torch.where(accept & here, yy_column[:, None], self.yy))
        self.yy.copy_(torch.where(accept & here[:, None], yy_column[None, :], self.yy))
        at_grad = g_with.clone()  # g · every slot's s and y; the replaced slot's with the new pair
        at_grad[0::2] = torch.where(accept & here, sg, at_grad[0::2])
        at_grad[1::2] = torch.where(accept & here, yg, at_grad[1::2])
        self.at_grad.copy_(at_grad)
        self.gamma.copy_(torch.where(accept, ys / yy, self.gamma))
        self.accepted += accept
        self.count.copy_(torch.clamp(self.count + accept, max=self.history))

    def _weights(self, gg: torch.Tensor, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """w with −H g = −γ g + Σ w·pairs (w by slot; empty slots 0), and gᵀd for d = −H g."""
        start = (self.accepted - self.count) % self.history
        order = (start + self.slots) % self.history  # oldest first
        valid = self.slots < self.count
        both = valid[:, None] & valid[None, :]
        sy = torch.where(both, self.sy[order][:, order], self.eye)
        yy = torch.where(both, self.yy[order][:, order], 0.0)
        sg = torch.where(valid, self.at_grad[2 * order], 0.0)
        yg = torch.where(valid, self.at_grad[2 * order + 1], 0.0)
        upper = sy.triu()
        z = torch.linalg.solve_triangular(upper, sg[:, None], upper=True)[:, 0]
        inner = sy.diagonal() * z + gamma * (yy @ z) - gamma * yg
        p = torch.linalg.solve_triangular(upper.T, inner[:, None], upper=False)[:, 0]
        weights = torch.zeros(2 * self.history, dtype=torch.float64, device=self.x.device)
        weights[2 * order] = -p
        weights[2 * order + 1] = gamma * z
        return weights, -gamma * gg + weights @ self.at_grad

    def _recover(self, finite: torch.Tensor, stationary: torch.Tensor) -> None:
        """After a non-finite evaluation: back to the fallback, memory emptied, the method restarted."""
        if self.fallback is not None:
            torch.where(finite, self.x, self.fallback, out=self.x)
        self.count.copy_(torch.where(finite, self.count, 0))
        self.fresh.copy_(~finite | (self.fresh & stationary))
        self.failures.copy_(torch.where(finite, 0, self.failures + 1))
        torch.maximum(self.worst, self.failures, out=self.worst)


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
