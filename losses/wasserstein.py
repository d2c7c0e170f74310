"""Wasserstein style losses: between Gaussian fits (Crowson) and sliced, between the samples (Heitz et al.).

    w2                  1/N·[‖μ_F − μ_S‖² + tr(Σ_F + Σ_S − 2(Σ_S^½ Σ_F Σ_S^½)^½)]
    sliced-wasserstein  mean over P directions v of mean_k (sort(vᵀF)_k − sort(vᵀS)_k)²

The N×N matrix functions of w2 run in float64 (on the CPU for MPS tensors, which have no
float64): Σ spans several orders of magnitude at VGG scale and the trace term is a
difference of nearly equal numbers. They cost O(N³), nothing next to the network.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from .base import StyleLoss
from .functional import (
    channel_means,
    gaussian_w2,
    gram_matrix,
    position_columns,
    random_directions,
    resample_quantiles,
    sliced_wasserstein,
    sorted_projections,
    sqrtm_psd,
    style_positions,
)
from .registry import register


class W2Target(NamedTuple):
    mean: torch.Tensor  # μ_S, (C,)
    raw_moment: torch.Tensor  # Ĝ_S = S Sᵀ/M, (C, C): with μ_S, what blends linearly
    cov_sqrt: torch.Tensor  # Σ_S^½ in float64, (C, C)
    cov_trace: torch.Tensor  # tr Σ_S in float64


def _float64(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to("cpu" if tensor.device.type == "mps" else tensor.device, torch.float64)


@register("w2")
class W2Loss(StyleLoss):
    """Gaussian W2²: 1/N·[‖μ_F − μ_S‖² + tr(Σ_F + Σ_S − 2(Σ_S^½ Σ_F Σ_S^½)^½)], eps·I added to each Σ.

    Σ is the biased covariance Ĝ − μμᵀ plus eps·I (Crowson's 1e-4). The square root of the
    target's Σ is computed once by eigh; tr((Σ_S^½ Σ_F Σ_S^½)^½) is Σ√λ from eigvalsh, whose
    gradient stays finite for repeated eigenvalues and is bounded by the eps floor.
    Several styles blend as the mixture's (μ, Ĝ), weights normalised to sum to one.
    """

    default_weight = 33.0  # benchmarks/calibrate_weights.py
    capturable = False  # on CUDA, eigvalsh checks its result on the host

    def __init__(self, eps: float = 1e-4, weight: float | None = None, layers: Sequence[str] | str | None = None):
        super().__init__(weight, layers)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
            raise ValueError(f"eps must be a number ≥ 0, not {eps!r}")
        self.eps = float(eps)

    def _covariance(self, mean: torch.Tensor, raw_moment: torch.Tensor) -> torch.Tensor:
        """Σ = Ĝ − μμᵀ + eps·I in float64 (batched or not)."""
        mean, raw_moment = _float64(mean), _float64(raw_moment)
        identity = torch.eye(raw_moment.shape[-1], dtype=torch.float64, device=raw_moment.device)
        return raw_moment - mean.unsqueeze(-1) * mean.unsqueeze(-2) + self.eps * identity

    def _target(self, mean: torch.Tensor, raw_moment: torch.Tensor) -> W2Target:
        cov = self._covariance(mean, raw_moment)
        return W2Target(mean, raw_moment, sqrtm_psd(cov), cov.diagonal().sum())

    def target(self, feats: torch.Tensor) -> W2Target:
        positions = style_positions(feats)
        return self._target(positions.mean(dim=1), positions @ positions.T / positions.shape[1])

    def forward(self, feats: torch.Tensor, target: W2Target) -> torch.Tensor:
        mean = channel_means(feats)
        cov = self._covariance(mean, gram_matrix(feats))
        floor = self.eps**2 if self.eps > 0 else torch.finfo(torch.float64).tiny
        value = gaussian_w2(_float64(mean), cov, _float64(target.mean), target.cov_sqrt, target.cov_trace, floor)
        return value.sum().to(mean.device, mean.dtype) / feats.shape[1]

    def blend(self, targets: Sequence[W2Target], weights: Sequence[float]) -> W2Target:
        total = sum(weights)
        mean = sum(w / total * t.mean for w, t in zip(weights, targets))
        raw_moment = sum(w / total * t.raw_moment for w, t in zip(weights, targets))
        return self._target(mean, raw_moment)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, {super().extra_repr()}"


@register("sliced-wasserstein", aliases=("swd",))
class SlicedWassersteinLoss(StyleLoss):
    """Sliced W2²: mean over P random unit directions v of mean_k (sort(vᵀF)_k − sort(vᵀS)_k)².

    projections  P, the number of directions; None: as many as channels (Heitz et al.'s code).
    seed         fixes the directions, so every evaluation sees one objective (L-BFGS needs
                 that); resample() draws new ones (Heitz et al. redraw at every evaluation).
    When M_S ≠ M_F the style's sorted projections are read at the output's quantiles
    (k + ½)/M_F by linear interpolation. The style's sorted projections are cached per
    target until the directions change, so a forward sorts only the output.
    """

    default_weight = 66.0  # benchmarks/calibrate_weights.py

    def __init__(self, projections: int | None = None, seed: int = 0, weight: float | None = None,
                 layers: Sequence[str] | str | None = None):
        super().__init__(weight, layers)
        if projections is not None and (isinstance(projections, bool) or not isinstance(projections, int)
                                        or projections < 1):
            raise ValueError(f"projections must be a positive integer or none, not {projections!r}")
        self.projections = projections
        self.seed = int(seed)
        self._directions: dict[tuple, torch.Tensor] = {}
        self._quantiles: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def resample(self, generator: torch.Generator) -> None:
        self.seed = int(torch.randint(0, 2**62, (), generator=generator))
        self._directions.clear()
        self._quantiles.clear()

    def directions(self, channels: int, like: torch.Tensor) -> torch.Tensor:
        """The current (P, channels) unit directions, on like's device and dtype."""
        key = (channels, like.device, like.dtype)
        if key not in self._directions:
            count = self.projections or channels
            self._directions[key] = random_directions(count, channels, self.seed).to(like.device, like.dtype)
        return self._directions[key]

    def target(self, feats: torch.Tensor) -> torch.Tensor:
        return style_positions(feats)

    def _target_quantiles(self, target: torch.Tensor, directions: torch.Tensor, count: int) -> torch.Tensor:
        key = (id(target), count, directions.dtype)
        cached = self._quantiles.get(key)
        if cached is None or cached[0] is not target:  # holding the target keeps its id unique
            if len(self._quantiles) >= 64:
                self._quantiles.clear()
            with torch.no_grad():
                quantiles = resample_quantiles(sorted_projections(target.to(directions.dtype), directions), count)
            cached = self._quantiles[key] = (target, quantiles)
        return cached[1]

    def forward(self, feats: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        positions = position_columns(feats)
        directions = self.directions(positions.shape[1], positions)
        quantiles = self._target_quantiles(target, directions, positions.shape[2])
        return sliced_wasserstein(positions, quantiles, directions).sum()

    def extra_repr(self) -> str:
        return f"projections={self.projections}, seed={self.seed}, {super().extra_repr()}"
