"""One objective evaluation (network, losses, backward) captured as a CUDA graph and replayed.

An eager evaluation launches a few hundred kernels; at the sizes people run on a fast GPU
the host takes longer to launch them than the GPU takes to run them (docs/performance.md
has the timings). A graph launches them all at once. Capture needs what the engine's loop already guarantees: x keeps its storage
(the optimisers move it in place) and every evaluation draws the same random numbers (so
not with Adam's per-evaluation resampling, which the engine runs eagerly); and it needs an
objective that never reads the device from the host, which a loss states with
`capturable` (StyleLoss) and which is checked here before capture.

The first call is a plain eager evaluation (it fills cuDNN's algorithm choices, the
allocator and the losses' caches); the second is eager too, with CUDA's sync check set to
raise, so an objective that reads the device (.item(), a host copy) is found while that is
still harmless, and stays eager, with a warning; the third captures and replays. From then
on x.grad and the returned losses are the graph's own tensors, rewritten by every replay.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable

import torch

Objective = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def evaluate_eagerly(objective: Objective, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """objective(x) and its gradient in x.grad, the plain way: (total, parts), detached."""
    x.grad = None
    total, parts = objective(x)
    total.backward()
    return total.detach(), parts


class GraphedEvaluation:
    """evaluation() → (total, parts) with x.grad filled, like evaluate_eagerly, as a graph replay."""

    def __init__(self, objective: Objective, x: torch.Tensor):
        if x.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA tensor, x is on {x.device}")
        self.objective = objective
        self.x = x
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: tuple[torch.Tensor, dict[str, torch.Tensor]] | None = None
        self.calls = 0
        self.eager_because: str | None = None  # why the objective cannot be captured

    def __call__(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.calls += 1
        with torch.cuda.device(self.x.device):  # capture and replay on x's GPU, whichever is current
            if self.graph is not None:
                self.graph.replay()
                return self.outputs
            if self.eager_because is not None or self.calls == 1:
                return evaluate_eagerly(self.objective, self.x)
            if self.calls == 2:
                return self._checked()
            return self._capture()

    def _checked(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """An eager evaluation in which any host read of the device raises instead of waiting."""
        previous = torch.cuda.get_sync_debug_mode()
        _set_sync_debug_mode("error")
        try:
            return evaluate_eagerly(self.objective, self.x)
        except RuntimeError as error:
            self.eager_because = str(error).splitlines()[0] if str(error) else type(error).__name__
        finally:
            _set_sync_debug_mode(previous)
        warnings.warn(f"the objective reads the device from the host, so it runs without a CUDA graph: "
                      f"{self.eager_because}", RuntimeWarning, stacklevel=3)
        return evaluate_eagerly(self.objective, self.x)

    def _capture(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                outputs = evaluate_eagerly(self.objective, self.x)  # recorded, not run
        except RuntimeError as error:
            raise RuntimeError(f"CUDA graph capture failed; run with --no-cuda-graph (cuda_graph=False), or mark "
                               f"the style loss capturable = False: {error}") from error
        self.graph, self.outputs = graph, outputs
        graph.replay()
        return outputs


def _set_sync_debug_mode(mode: int | str) -> None:
    """torch.cuda.set_sync_debug_mode without its warning that the mode is a prototype (it
    may miss some synchronising operations; capture then still fails loudly)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Synchronization debug mode is a prototype")
        torch.cuda.set_sync_debug_mode(mode)


def evaluation_for(objective: Objective, x: torch.Tensor, use_graph: bool,
                   capturable: bool) -> Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """How each evaluation runs: replayed as a CUDA graph where asked for and possible, else eagerly.

    A graph needs x on a CUDA device and an objective whose random choices stay fixed and
    whose losses never read the device on the host (`capturable`).
    """
    if use_graph and capturable and x.device.type == "cuda":
        return GraphedEvaluation(objective, x)
    return functools.partial(evaluate_eagerly, objective, x)
