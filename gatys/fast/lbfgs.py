"""L-BFGS with a fixed step, one evaluation per step, in the compact representation, on the device.

It takes the same steps as torch.optim.LBFGS(lr, max_iter=1, history_size=m, no line
search, tolerances 0), computed differently. Torch's two-loop recursion makes 4m small
vector operations per step and reads scalars back to the host; here the inverse-Hessian
product comes from two passes over one buffer holding the s and y pairs (Byrd, Nocedal &
Schnabel 1994; Nocedal & Wright eq. 7.24):

    H g = γ g + S p − γ Y z,   z = R⁻¹ Sᵀg,   p = R⁻ᵀ((D + γ YᵀY) z − γ Yᵀg)

where R is the upper triangle of SᵀY (pairs oldest first), D its diagonal and
γ = sᵀy / yᵀy of the newest pair. One matrix product of this step's y and g with the
buffer gives every inner product the step needs; the rest is m×m algebra, done on the
device as well. Nothing is read back, so a step never waits for the device and the host
can queue the next evaluation while the device runs this one.

What a host version decides with `if` (store the pair when sᵀy > 0, move only along a
descent direction, stop at a zero gradient, restart after a non-finite loss) is decided
by masks, and the pairs live in a ring of m + 1 slots: the m stored ones, oldest first
from `head − count`, and the free slot at `head`, where the next pair goes. Since the
free slot is never in use, the new pair's column of SᵀY and YᵀY is written there before
knowing whether the pair is kept; keeping it is moving `head` on. A step launches a fixed
number of small device operations, as many with a full history as with an empty one
(counted, with their history, in docs/performance.md); the iterates agree with torch's to
rounding (tests/test_lbfgs.py).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

CURVATURE_FLOOR = 1e-10  # torch's: a pair with sᵀy at or below it is not stored
S, Y, G = 0, 1, 2  # the buffer's rows of this step's s, y and g
FIRST_PAIR = 3  # slot j's s and y are rows FIRST_PAIR + 2j and + 2j + 1; slot m + 1 takes rejected pairs


class LBFGS:
    """step(evaluate) evaluates the objective at x (filling x.grad), then moves x in place.

    A step returns the loss as a device tensor and reads nothing back. A non-finite loss
    (or gradient) moves x back to `fallback` (when given: the engine's best image; without
    one, x is not finite after such a step) and restarts the method; `failures` counts such
    evaluations in a row and `worst` the longest run of them, both device tensors for the
    caller to read when it likes.
    """

    def __init__(self, x: torch.Tensor, lr: float = 1.0, history: int = 100, fallback: torch.Tensor | None = None):
        self.x = x
        self.lr = lr
        self.history = history
        self.fallback = fallback
        device = x.device
        slots = history + 1
        self.rows = x.new_zeros((FIRST_PAIR + 2 * (slots + 1), x.numel()))  # s, y, g, the ring, the spare slot
        wide = {"device": device, "dtype": torch.float64}
        self.sy = torch.zeros(slots, slots, **wide)  # s_iᵀy_j by slot; R reads it for i older than j
        self.yy = torch.zeros(slots, slots, **wide)  # y_iᵀy_j by slot
        self.gamma = torch.ones((), **wide)
        self.one = torch.ones((), **wide)
        self.head = torch.zeros((), dtype=torch.long, device=device)  # the free slot
        self.count = torch.zeros((), dtype=torch.long, device=device)  # stored pairs, in the slots before head
        self.started = torch.zeros((), dtype=torch.bool, device=device)  # a first step has been taken
        self.failures = torch.zeros((), dtype=torch.long, device=device)
        self.worst = torch.zeros((), dtype=torch.long, device=device)
        self.step_size = torch.zeros((), dtype=x.dtype, device=device)
        self.direction = x.new_zeros(x.numel())
        self.products = torch.zeros(2, FIRST_PAIR + 2 * slots, **wide)  # y and g · each row the products read
        self.steps = 0  # a host count: the slots below it are all that can hold a pair
        self.slot_ids = torch.arange(slots, device=device)
        self.eye = torch.eye(history, **wide)

    @property
    def pairs(self) -> torch.Tensor:
        """The ring of pairs by slot: s_j in row 2j, y_j in row 2j + 1 (used or not)."""
        return self.rows[FIRST_PAIR : FIRST_PAIR + 2 * (self.history + 1)]

    def step(self, evaluate: Callable[[], torch.Tensor]) -> torch.Tensor:
        """One evaluation and one move; returns the loss at the evaluated point (a device tensor)."""
        with torch.enable_grad():
            loss = evaluate()
        return self.move(loss)

    @torch.no_grad()
    def move(self, loss: torch.Tensor) -> torch.Tensor:
        """The move after an evaluation made elsewhere (x.grad filled at x): a batch steps each image's own."""
        grad = self.x.grad.reshape(-1)
        rows = self.rows
        torch.mul(self.direction, self.step_size, out=rows[S])  # the last move
        torch.sub(grad, rows[G], out=rows[Y])
        rows[G].copy_(grad)
        filled = FIRST_PAIR + 2 * min(self.steps, self.history + 1)  # a pair goes to a slot below the step count
        self.steps += 1
        with _exact_float32():  # y and g · (s, y, g, each slot's s and y); unfilled slots are zero rows
            self.products[:, :filled] = rows[Y : G + 1] @ rows[:filled].T
        with_y, with_g = self.products
        ys, yy, sg, yg, gg = with_y[S], with_y[Y], with_g[S], with_g[Y], with_g[G]
        finite = _finite(loss + gg)  # the loss and the gradient
        moving = finite & (gg != 0)  # torch stops at a zero gradient: no pair, no move
        accept = moving & self.started & (ys > CURVATURE_FLOOR)
        with_pairs = self._store(accept, ys, yy, sg, yg, with_y[FIRST_PAIR:].view(-1, 2), with_g[FIRST_PAIR:])
        coefficients, slope = self._coefficients(with_pairs, gg)
        # d = −γ g + Σ w·pairs: one product over the buffer's g and ring rows (adjacent). Where
        # not `moving`, d is 0 (g = 0) or not finite (and x goes back to the fallback below).
        torch.mv(rows[G:filled].T, coefficients[: filled - G].to(grad.dtype), out=self.direction)
        # torch's min(1, 1/|g|₁)·lr; vector_norm, unlike abs().sum(), needs no temporary of x's size
        first_size = self.lr / torch.clamp(torch.linalg.vector_norm(grad, 1), min=1.0)
        self.step_size.copy_(torch.where(self.started, self.lr, first_size))
        move = moving & (slope <= 0)  # torch does not follow a non-descent direction
        self.x.view(-1).addcmul_(self.direction, torch.where(move, self.step_size, 0.0))
        self._restart_unless(finite, moving)
        return loss

    def _store(self, accept, ys, yy, sg, yg, y_with, g_with) -> torch.Tensor:
        """Write the new pair's column into the free slot, keep the pair if `accept`; g · each slot's (s, y)."""
        m, head = self.history, self.head.view(1)
        here = self.slot_ids == self.head
        sy_column = torch.where(here, ys, y_with[:, 0])  # s_iᵀy with every slot's s, sᵀy in the free slot
        yy_column = torch.where(here, yy, y_with[:, 1])
        self.sy.index_copy_(1, head, sy_column[:, None])
        self.yy.index_copy_(1, head, yy_column[:, None])
        self.yy.index_copy_(0, head, yy_column[None, :])
        target = torch.where(accept, self.head, m + 1).view(1)  # a rejected pair goes to the spare slot
        self.rows[FIRST_PAIR:].view(m + 2, 2, -1).index_copy_(0, target, self.rows[S : Y + 1][None])
        torch.where(accept, ys / yy, self.gamma, out=self.gamma)
        self.count.add_(accept).clamp_(max=m)
        self.head.add_(accept).remainder_(m + 1)
        return torch.where(here[:, None], torch.stack([sg, yg]), g_with.view(-1, 2))

    def _coefficients(self, with_pairs: torch.Tensor, gg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """c with −H g = c · (g, the ring's rows), and the slope gᵀd of d = −H g."""
        m, gamma = self.history, self.gamma
        order = (self.head - self.count + self.slot_ids[:m]) % (m + 1)  # the stored pairs oldest first, then unused
        used = self.slot_ids[:m] < self.count
        both = used[:, None] & used[None, :]
        sy = torch.where(both, self.sy[order[:, None], order[None, :]], self.eye)  # unused: identity, so z, p = 0
        yy = torch.where(both, self.yy[order[:, None], order[None, :]], 0.0)
        at_grad = torch.where(used[:, None], with_pairs[order], 0.0)  # Sᵀg and Yᵀg, oldest first
        sg, yg = at_grad.unbind(1)
        upper = sy.triu()
        z = torch.linalg.solve_triangular(upper, sg[:, None], upper=True)
        inner = torch.addcmul(gamma * (yy @ z - yg[:, None]), sy.diagonal()[:, None], z)
        p = torch.linalg.solve_triangular(upper.T, inner, upper=False)
        weights = torch.cat([-p, gamma * z], dim=1)  # of s and y, oldest first
        coefficients = torch.zeros(m + 2, 2, device=gamma.device, dtype=gamma.dtype)  # row 0: g's, then by slot
        coefficients.index_copy_(0, order + 1, weights)
        torch.neg(gamma, out=coefficients[0, 1])
        slope = torch.addcmul(weights.view(-1) @ at_grad.view(-1), gamma, gg, value=-1)  # gᵀd, from the products
        return coefficients.view(-1)[1:], slope

    def _restart_unless(self, finite: torch.Tensor, moving: torch.Tensor) -> None:
        """After a non-finite evaluation: back to the fallback, memory emptied, the method restarted."""
        if self.fallback is not None:
            torch.where(finite, self.x, self.fallback, out=self.x)
        self.count.mul_(finite)
        torch.where(finite, self.gamma, self.one, out=self.gamma)
        self.started.logical_and_(finite).logical_or_(moving)  # moving implies finite
        self.failures.add_(1).mul_(~finite)
        torch.maximum(self.worst, self.failures, out=self.worst)


def _finite(value: torch.Tensor) -> torch.Tensor:
    """isfinite in two device operations (torch.isfinite takes four): v − v is 0 unless v is ±inf or NaN."""
    return (value - value) == 0


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
