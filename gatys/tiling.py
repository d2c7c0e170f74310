"""Tiled evaluation: the exact objective and pixel gradient of an image evaluated a tile at a time.

A style loss of the tileable kind is L(s) with s an average over positions of φ(F_p) (Gram
matrices, means, second moments): `statistics(F, weights)` gives the sums and the weight count,
which add over tiles, and `value_from(statistics, target)` the loss from them. One evaluation:

  1. every tile (no gradient): the network on the tile and its halo; each style layer's
     statistics summed over the tile's own positions, the content term's squared error too;
  2. the losses from the summed statistics S, and g = dL/dS by autograd on S alone;
  3. every tile again, with gradient: backward of Σ ⟨g, s_tile⟩ + the tile's content error, which
     is exactly the tile's share of the gradient of the whole objective (L is linear in nothing,
     but its gradient is g times ∂S/∂F, and S is a sum over tiles);
  4. total variation on the whole image (three channels, no network: it always fits).

Exactness needs each tile's own features to equal the untiled ones: tiles start on the grid of
the deepest layer's poolings (2^pools px, 16 for relu5_1) and carry a halo of at least the
deepest layer's receptive-field radius (`receptive_radius`: 85 px for relu5_1, 45 for relu4_2),
rounded up to that grid, so the zero padding a tile's convolutions see at its edge never reaches
its own positions. The image's own borders are the tile's borders there, padded as untiled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

import losses
from losses.content import content_loss
from losses.tv import tv_loss

from .errors import GatysError
from .objective import Objective, divide_features
from .vgg import LAYERS, TORCHVISION_INDEX


def receptive_radius(layer: str) -> int:
    """Pixels from a position of `layer` to the farthest input pixel it depends on (VGG19: 3×3 convolutions
    with padding 1, 2×2 poolings of stride 2)."""
    radius, jump = 0, 1
    for name in LAYERS[: TORCHVISION_INDEX[layer] + 1]:
        if name.startswith("conv"):
            radius += jump
        elif name.startswith("pool"):
            radius += jump
            jump *= 2
    return radius


def downsampling(layer: str) -> int:
    """2^(poolings before `layer`): image pixels per position of its grid along each side."""
    return 2 ** sum(1 for name in LAYERS[: TORCHVISION_INDEX[layer]] if name.startswith("pool"))


def halo_for(layers: Sequence[str]) -> tuple[int, int]:
    """(halo, grid): the deepest layer's receptive radius rounded up to its pooling grid, and that grid."""
    deepest = max(layers, key=TORCHVISION_INDEX.__getitem__)
    grid = downsampling(deepest)
    return grid * math.ceil(receptive_radius(deepest) / grid), grid


@dataclass(frozen=True)
class Tile:
    """A tile's own pixels [top, bottom) × [left, right) and the window the network sees (own pixels and halo)."""

    top: int
    bottom: int
    left: int
    right: int
    window: tuple[int, int, int, int]  # (top, bottom, left, right) with the halo, clipped to the image

    def own(self, feats: torch.Tensor, factor: int) -> torch.Tensor:
        """The tile's own positions of a layer's map computed on the window (factor: pixels per position)."""
        top, left = (self.top - self.window[0]) // factor, (self.left - self.window[2]) // factor
        height = self.bottom // factor - self.top // factor
        width = self.right // factor - self.left // factor
        return feats[..., top: top + height, left: left + width]

    def of_map(self, global_map: torch.Tensor, factor: int) -> torch.Tensor:
        """The tile's own positions of a map over the whole image's grid (position weights, the content target)."""
        return global_map[..., self.top // factor: self.bottom // factor, self.left // factor: self.right // factor]


def plan_tiles(height: int, width: int, shape: tuple[int, int], halo: int, grid: int) -> list[Tile]:
    """Tiles of `shape` = (height, width) px (rounded down to the grid, at least one grid cell) covering the
    image, row by row; a remainder narrower than one grid cell joins the tile before it."""
    tile_height, tile_width = (max(grid, side // grid * grid) for side in shape)
    tiles = []
    for top in range(0, height, tile_height):
        for left in range(0, width, tile_width):
            bottom, right = min(top + tile_height, height), min(left + tile_width, width)
            if height - bottom < grid:
                bottom = height  # a remainder smaller than one grid cell joins its neighbour
            if width - right < grid:
                right = width
            window = (max(0, top - halo), min(height, bottom + halo), max(0, left - halo), min(width, right + halo))
            tiles.append(Tile(top, bottom, left, right, window))
            if right == width:
                break
        if bottom == height:
            break
    return tiles


def check_tileable(style_losses: Sequence[losses.StyleLoss]) -> None:
    """GatysError naming a loss that has no exact tiled form."""
    for loss in style_losses:
        if not getattr(loss, "tileable", False):
            raise GatysError(f"style loss {loss.name or type(loss).__name__!r} cannot be evaluated in tiles exactly "
                             "(its value is not a function of statistics averaged over positions); give a "
                             "--max-memory that holds the untiled picture, or a tileable loss (gram, moments, w2, "
                             "mmd-linear, mmd-poly with d=2)")


class TiledObjective:
    """An Objective evaluated tile by tile: the same value and pixel gradient, in memory for one tile."""

    def __init__(self, objective: Objective, shape: tuple[int, int]):
        check_tileable([term.loss for term in objective.style_terms])
        self.objective = objective
        self.layers = objective.layers
        self.halo, self.grid = halo_for(self.layers)
        self.image_shape = objective.image_shape
        self.content_target = objective.content_target
        self.tiles = plan_tiles(*objective.image_shape, shape, self.halo, self.grid)
        self._crops: dict[tuple[int, Tile], tuple[torch.Tensor, torch.Tensor]] = {}  # holding the map keeps its id

    def describe(self) -> dict:
        """What the manifest records of the tiling: tile count and size, halo, pixels evaluated per pass."""
        own = self.tiles[0]
        windows = sum((t.window[1] - t.window[0]) * (t.window[3] - t.window[2]) for t in self.tiles)
        return {"tiles": len(self.tiles), "tile": [own.bottom - own.top, own.right - own.left], "halo": self.halo,
                "evaluated_pixels": windows / math.prod(self.image_shape)}

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The value only, as Objective(x) gives it under no_grad (for scoring)."""
        with torch.no_grad():
            statistics, content = self._first_pass(x)
            style = self._style(statistics)
        return self._parts(x, content, style)

    def evaluate(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total, parts), detached, with the gradient of the total in x.grad: the tiled form of evaluate_eagerly."""
        x.grad = None
        with torch.no_grad():
            statistics, content = self._first_pass(x)
        leaves = [{key: value.detach().requires_grad_(True) for key, value in entry.items()} for entry in statistics]
        style = self._style(leaves)
        if style.requires_grad:
            style.backward()
        objective = self.objective
        for tile in self.tiles:
            feats = self._features(x, tile)
            surrogate = x.new_zeros(())
            for (term, layer, _, _, positions), leaf in zip(self._entries(), leaves):
                stats = self._statistics(term, layer, feats, tile, positions)
                surrogate = surrogate + sum(((leaf[key].grad * value).sum() for key, value in stats.items()
                                             if leaf[key].grad is not None and value.requires_grad), x.new_zeros(()))
            if objective.content_weight:
                surrogate = surrogate + objective.content_weight * self._content_error(feats, tile)
            if surrogate.requires_grad:
                surrogate.backward()
        tv = x.new_zeros(())
        if objective.tv_weight:
            tv = tv_loss(x)
            (objective.tv_weight * tv).backward()
        return self._parts(x, content, style.detach(), tv.detach())

    # -- the passes ---------------------------------------------------------------------
    def _entries(self) -> Iterator[tuple]:
        """(term, layer, weight, target, position weights) of every style comparison, in a fixed order."""
        for term in self.objective.style_terms:
            for layer in term.layers:
                for weight, target, positions in term.targets[layer]:
                    yield term, layer, weight, target, positions

    def _features(self, x: torch.Tensor, tile: Tile) -> dict[str, torch.Tensor]:
        top, bottom, left, right = tile.window
        return self.objective.features(x[..., top:bottom, left:right], self.layers)

    def _statistics(self, term, layer: str, feats: dict, tile: Tile, positions: torch.Tensor | None) -> dict:
        factor = downsampling(layer)
        own = divide_features(tile.own(feats[layer], factor), self.objective.style_scales.get(layer, 1.0))
        return term.loss.statistics(own, None if positions is None else self._crop(positions, tile, factor))

    def _crop(self, positions: torch.Tensor, tile: Tile, factor: int) -> torch.Tensor:
        """The tile's share of a layer's position weights, made once: the losses read a weights tensor's
        values on the host the first time they see it (its checks), so each evaluation must pass the same one."""
        key = (id(positions), tile)
        if key not in self._crops:
            self._crops[key] = (positions, tile.of_map(positions, factor).contiguous())
        return self._crops[key][1]

    def _content_error(self, feats: dict, tile: Tile) -> torch.Tensor:
        """The tile's share of the content term: its squared error over the whole map's element count."""
        objective = self.objective
        factor = downsampling(objective.content_layer)
        own = divide_features(tile.own(feats[objective.content_layer], factor), objective.content_scale)
        target = tile.of_map(objective.content_target, factor)
        share = own.numel() / objective.content_target.numel()
        return content_loss(own, target) * share

    def _first_pass(self, x: torch.Tensor) -> tuple[list[dict], torch.Tensor]:
        """The statistics of every entry summed over the tiles, and the content term."""
        summed: list[dict] | None = None
        content = x.new_zeros((), dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)
        for tile in self.tiles:
            feats = self._features(x, tile)
            stats = [self._statistics(term, layer, feats, tile, positions)
                     for term, layer, _, _, positions in self._entries()]
            summed = stats if summed is None else [{key: total[key] + part[key] for key in total}
                                                   for total, part in zip(summed, stats)]
            if self.objective.content_weight:
                content = content + self._content_error(feats, tile)
        return summed or [], content

    def _style(self, statistics: list[dict]) -> torch.Tensor:
        """style_weight · Σ_terms weight/|layers| · Σ entry weight · L(S), from the summed statistics."""
        objective = self.objective
        total = None
        for (term, layer, weight, target, _), stats in zip(self._entries(), statistics):
            value = term.loss.weight / len(term.layers) * weight * term.loss.value_from(stats, target)
            total = value if total is None else total + value
        if total is None:
            return torch.zeros(())
        return objective.style_weight * total

    def _parts(self, x: torch.Tensor, content: torch.Tensor, style: torch.Tensor, tv: torch.Tensor | None = None):
        objective = self.objective
        if tv is None:
            with torch.no_grad():
                tv = tv_loss(x) if objective.tv_weight else x.new_zeros(())
        parts = {"content": objective.content_weight * content.detach(), "style": style.detach().to(content.device),
                 "tv": objective.tv_weight * tv}
        total = parts["content"] + parts["style"] + parts["tv"]
        return total, parts
