"""A run's bookkeeping: what callbacks see after each evaluation, and the loss trace, best image and timing.

The evaluation loop touches nothing else: RunState.record keeps the best image and the
losses on the device (read back once per scale), so the loop never waits on the device.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

LOSS_PARTS = ("total", "content", "style", "tv")


@dataclass
class Progress:
    """What a callback sees after each evaluation. `losses` are device tensors: .item() syncs."""

    scale: int            # 0-based index of the current scale
    scales: int
    shape: tuple[int, int]
    iteration: int        # 1-based evaluations done at this scale
    iterations: int
    done: int             # evaluations done over all scales
    total: int            # evaluations planned over all scales
    losses: dict[str, torch.Tensor]  # rewritten by the next evaluation under a CUDA graph: read, don't keep
    image: torch.Tensor   # the image just evaluated (a live view: clone to keep it)
    elapsed: float
    plan: tuple[tuple[int, int], ...] = ()  # (pixels, evaluations planned) of every scale, coarse to fine


Callback = Callable[[Progress], None]


class RunState:
    """Loss trace, best image and timing of a run; the only state the evaluation closure touches."""

    def __init__(self, device: torch.device, planned: int, callbacks: list, plan: tuple[tuple[int, int], ...] = ()):
        self.device = device
        self.planned = planned
        self.plan = plan
        self.callbacks = callbacks
        self.started = time.perf_counter()
        self.interrupted = False
        self.stopped: str | None = None
        self.stopped_because = "budget"  # why the current scale ended: budget, converged, interrupted, non-finite
        self._non_finite: torch.Tensor | None = None
        self._scale_open = False
        self.trace: list[dict] = []
        self.done = 0
        self.best: torch.Tensor | None = None
        self.best_loss: torch.Tensor | None = None
        self.evaluations_at_scale = 0
        self._records: list[torch.Tensor] = []
        self._scale_started = self.started
        self._iterations = 0
        self._scale_seconds: list[float] = []

    def start_scale(self, x: torch.Tensor, iterations: int) -> None:
        self.best = x.detach().clone()
        self.best_loss = torch.full((), float("inf"), device=x.device)
        self.evaluations_at_scale = 0
        self._records = []
        self._iterations = iterations
        self._scale_started = time.perf_counter()
        self._non_finite = torch.zeros((), dtype=torch.long, device=x.device)
        self._scale_open = True
        self.stopped_because = "interrupted"
        self.trace.append({"shape": list(x.shape[-2:]), "iterations": iterations,
                           "losses": {name: [] for name in LOSS_PARTS}})

    def record(self, x: torch.Tensor, total: torch.Tensor, parts: dict, index: int, scales: int) -> None:
        # Best image without a host sync: select on the device.
        better = total < self.best_loss
        torch.where(better, x.detach(), self.best, out=self.best)  # in place: no image-sized temporary
        self.best_loss = torch.where(better, total, self.best_loss)
        self._non_finite += ~torch.isfinite(total)  # counted on the device, read once per scale
        losses = {"total": total, **parts}
        self._records.append(torch.stack([losses[name].float() for name in LOSS_PARTS]))
        self.evaluations_at_scale += 1
        self.done += 1
        if self.callbacks:
            progress = Progress(index, scales, tuple(x.shape[-2:]), self.evaluations_at_scale, self._iterations,
                                self.done, self.planned, losses, x.detach(), time.perf_counter() - self.started,
                                self.plan)
            for callback in self.callbacks:
                callback(progress)

    def best_image(self) -> torch.Tensor | None:
        return self.best if self.evaluations_at_scale else None

    def stop(self, reason: str, x: torch.Tensor | None, message: str | None = None) -> torch.Tensor | None:
        """End the run early (interrupted, or non-finite with a message); the image to keep."""
        self.stopped_because = reason
        self.end_scale()
        self.interrupted = reason == "interrupted"
        self.stopped = message
        best = self.best_image()
        return best if best is not None else x

    def end_scale(self) -> None:
        """Close the current scale (if one is open): its time, loss trace and non-finite evaluations."""
        if not self._scale_open:
            return
        self._scale_open = False
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._scale_seconds.append(time.perf_counter() - self._scale_started)
        if self._records:
            values = torch.stack(self._records).cpu().tolist()
            for column, name in enumerate(LOSS_PARTS):
                self.trace[-1]["losses"][name] = [row[column] for row in values]
        self.trace[-1]["non_finite_evaluations"] = int(self._non_finite)
        self.trace[-1]["stopped_because"] = self.stopped_because

    def converged_by(self, tolerance: float) -> Callable[[], bool]:
        """A check that the best objective improved by less than `tolerance` (relative) since it last ran."""
        previous = [float("inf")]

        def converged() -> bool:
            current = float(self.best_loss)  # a read of the device, every optimize.GUARD_EVERY steps
            done = math.isfinite(previous[0]) and previous[0] - current <= tolerance * abs(previous[0])
            previous[0] = current
            return done

        return converged

    def timings(self) -> dict:
        evaluations = [len(scale["losses"]["total"]) for scale in self.trace]
        return {
            "total_seconds": time.perf_counter() - self.started,
            "scale_seconds": self._scale_seconds,
            "evaluations": evaluations,
            "seconds_per_evaluation": [s / n if n else None for s, n in zip(self._scale_seconds, evaluations)],
        }
