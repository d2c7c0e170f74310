"""One objective evaluation (network, losses, backward) captured as a CUDA graph and replayed.

An eager evaluation launches a few hundred kernels; at the sizes people run on a fast GPU
the host can take longer to launch them than the GPU takes to run them. A graph launches
them all at once. Capture needs what the engine's loop already guarantees: x keeps its
storage (the optimisers move it in place), the objective reads nothing back to the host
(no registered loss does), and every evaluation draws the same random numbers (so not
with Adam's per-evaluation resampling, which the engine runs eagerly).

The first call runs eagerly on a side stream, which warms cuDNN's algorithm choice and the
allocator as capture requires; the second captures and replays. From then on x.grad and
the returned losses are the graph's own tensors, rewritten by every replay. If capture
fails (say a user's loss reads a value with .item()), the evaluation stays eager, with a
warning.
"""
from __future__ import annotations

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
        self.failed: str | None = None  # why capture failed; the evaluation is eager from then on

    def __call__(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
            return self.outputs
        if self.failed is not None:
            return evaluate_eagerly(self.objective, self.x)
        if self.calls == 1:
            return self._warm_up()
        return self._capture()

    def _warm_up(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        stream = torch.cuda.Stream(self.x.device)
        stream.wait_stream(torch.cuda.current_stream(self.x.device))
        with torch.cuda.stream(stream):
            outputs = evaluate_eagerly(self.objective, self.x)
        torch.cuda.current_stream(self.x.device).wait_stream(stream)
        return outputs

    def _capture(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                outputs = evaluate_eagerly(self.objective, self.x)  # recorded, not run
        except RuntimeError as error:
            self.failed = str(error).splitlines()[0] if str(error) else type(error).__name__
            warnings.warn(f"CUDA graph capture failed, evaluating eagerly: {self.failed}", RuntimeWarning,
                          stacklevel=3)
            torch.cuda.synchronize(self.x.device)
            return evaluate_eagerly(self.objective, self.x)
        self.graph, self.outputs = graph, outputs
        graph.replay()
        return outputs
