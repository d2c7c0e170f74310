"""The StyleLoss contract shared by every registered loss.

A style loss compares the feature maps of the image being optimised with
statistics of a style image's feature maps:

    T = loss.target(style_feats)                      # once per scale, no gradient
    value = loss(feats, T)                            # a scalar, differentiable in feats

    T = loss.target(style_feats, weights=style_mask)  # position weights (spatial control)
    value = loss(feats, T, weights=output_mask)

Features are (B, C, H, W); the value is summed over the batch. The style and the
output may have different H×W. Position weights are non-negative (1 or B, 1, H, W)
tensors on the features' grid, constants (no gradient flows into them): every statistic
becomes the weighted one, normalised by Σ_p w_p (Ĝ = Σ_p w_p f_p f_pᵀ / Σ_p w_p), so a
0/1 mask gives the loss of the selected positions alone; None is uniform and gives the
unweighted numbers exactly. A loss that takes them sets `position_weights = True`. This
module depends on torch only.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

Target = Any  # a tensor, or a tuple / dict of tensors


class StyleLoss(nn.Module):
    """Base class: subclasses implement `target` and `forward`.

    `weight` multiplies the loss of every layer it is applied to; its default is the
    class attribute `default_weight`, chosen so that, with the engine's default content
    weight, each loss gives a comparably strong stylisation (see docs/losses.md). `layers`
    names the VGG layers the loss is applied to (None: the engine's default style layers).
    `capturable` says whether forward can be recorded in a CUDA graph: it is False for a
    loss that reads a device value on the host (a check, a data-dependent size), and the
    engine then evaluates such an objective eagerly. `position_weights` says whether
    `target` and `forward` take `weights=` (masks); a subclass that does not override them
    to do so leaves it False, and the engine refuses masks for it. `tileable` says whether the
    loss is L(s) of statistics s averaged over positions, exposed as `statistics` (sums that add
    over tiles of an image) and `value_from` (the loss from summed statistics), so the engine can
    evaluate a picture too large for memory in tiles with the exact objective (gatys/tiling.py).
    """

    name: str = ""
    default_weight: float = 1.0
    capturable: bool = True
    position_weights: bool = False
    tileable: bool = False

    def __init__(self, weight: float | None = None, layers: Sequence[str] | str | None = None):
        super().__init__()
        self.weight = float(self.default_weight if weight is None else weight)
        if isinstance(layers, str):
            layers = [layers]
        self.layers = tuple(layers) if layers is not None else None
        self._checked_weights = TensorCache()

    def target(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> Target:
        """Statistics of style features (1 or B, C, H, W), positions weighted by weights (1 or B, 1, H, W)."""
        raise NotImplementedError

    def forward(self, feats: torch.Tensor, target: Target, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The loss of feats (B, C, H, W) against a target, positions weighted by weights, summed over the batch."""
        raise NotImplementedError

    def scaled(self, feats: torch.Tensor, scale: float, target: Target,
               weights: torch.Tensor | None = None) -> torch.Tensor:
        """forward(feats / scale, target, weights): how the engine applies its layer normalisation.

        A loss whose statistics scale exactly overrides this to skip the division, a pass
        over the whole feature map each way (the Gram loss: Ĝ(F/s) = Ĝ(F)/s²).
        """
        feats = feats if scale == 1.0 else feats * (1.0 / scale)
        return self(feats, target) if weights is None else self(feats, target, weights)

    def statistics(self, feats: torch.Tensor, weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Sums over the positions of feats (B, C, H, W), weighted, that add over tiles: a tileable loss's."""
        raise NotImplementedError(f"style loss {self.name!r} has no statistics that add over tiles")

    def value_from(self, statistics: dict[str, torch.Tensor], target: Target) -> torch.Tensor:
        """The loss from `statistics` summed over every tile of an image: forward's value, for a tileable loss."""
        raise NotImplementedError(f"style loss {self.name!r} has no statistics that add over tiles")

    def blend(self, targets: Sequence[Target], weights: Sequence[float]) -> Target | None:
        """One target equivalent to Σ_k w_k·L(x, T_k), or None when there is none.

        None makes the objective sum the weighted losses against each target, which is
        the definition; losses whose statistics mix linearly override this to save work.
        """
        return None

    def resample(self, generator: torch.Generator) -> None:
        """Redraw random choices (positions, projections); a no-op for exact losses."""

    def checked_weights(self, weights: torch.Tensor | None, feats: torch.Tensor,
                        pooled: bool = False) -> torch.Tensor | None:
        """weights after `check_weights`, whose reads of their values run once per weights tensor
        (they wait for the device), so a forward stays capturable after its first call."""
        if weights is not None:
            check_weights(weights, feats, pooled, read_values=False)
            self._checked_weights.get(weights, pooled, lambda: check_weights(weights, feats, pooled))
        return weights

    def extra_repr(self) -> str:
        return f"weight={self.weight:g}"


def check_features(feats: torch.Tensor, what: str = "features") -> None:
    """Raise a clear error unless feats is a (B, C, H, W) tensor."""
    if not isinstance(feats, torch.Tensor) or feats.dim() != 4:
        shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
        raise ValueError(f"{what} must be a (B, C, H, W) tensor, got {shape}")


def check_weights(weights: torch.Tensor, feats: torch.Tensor, pooled: bool = False, read_values: bool = True) -> None:
    """Raise a one-line ValueError unless weights are position weights for feats (B, C, H, W).

    They must be a real (1 or B, 1, H, W) tensor on feats' grid and, when read_values is true,
    finite, non-negative and with a positive sum per batch item (over the whole batch when
    pooled: a style's positions are one sample). Reading the values waits for the device.
    """
    check_features(feats)
    batch, _, height, width = feats.shape
    if (not isinstance(weights, torch.Tensor) or weights.dim() != 4 or weights.shape[1] != 1
            or weights.shape[0] not in (1, batch) or tuple(weights.shape[2:]) != (height, width)):
        shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        sizes = "1" if batch == 1 else f"1 or {batch}"
        raise ValueError(f"position weights must be a ({sizes}, 1, {height}, {width}) tensor on the features' grid, "
                         f"got {shape}")
    if weights.is_complex():
        raise ValueError(f"position weights must be real, got {weights.dtype}")
    if not read_values:
        return
    values = weights.detach()
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise ValueError("position weights must be finite and non-negative")
    totals = values.sum() if pooled else values.flatten(1).sum(1)
    if not bool((totals > 0).all()):
        where = "" if pooled else " for a batch item"
        raise ValueError(f"position weights sum to zero{where}: no position is selected")


def supports_position_weights(loss: StyleLoss) -> bool:
    """Whether a loss takes position weights (masks) in target() and forward()."""
    return bool(getattr(loss, "position_weights", False))


def require_position_weights(loss: StyleLoss) -> None:
    """Raise ValueError unless the loss takes position weights; the engine calls this before using masks."""
    if not supports_position_weights(loss):
        name = getattr(loss, "name", "") or type(loss).__name__
        raise ValueError(f"style loss {name!r} does not take position weights (masks): it must set "
                         f"position_weights = True and accept weights= in target() and forward()")


class TensorCache:
    """Values computed from a tensor, keyed by its identity and a key; each entry holds its tensor,
    which keeps the id unique while the entry lives. At most `size` entries (then it starts over)."""

    def __init__(self, size: int = 64):
        self.size = size
        self.entries: dict[tuple, tuple[torch.Tensor, Any]] = {}

    def get(self, tensor: torch.Tensor, key: Any, compute: Callable[[], Any]) -> Any:
        full_key = (id(tensor), key)
        cached = self.entries.get(full_key)
        if cached is None or cached[0] is not tensor:
            if len(self.entries) >= self.size:
                self.entries.clear()
            cached = self.entries[full_key] = (tensor, compute())
        return cached[1]

    def clear(self) -> None:
        self.entries.clear()
