"""Copied style objects: whether a stylised picture holds a whole piece of the style image (a face, a hand).

A style transfer should take the style's strokes and colours, not its objects; the coarse-to-fine schedule can
plant whole recognisable regions of the style in the picture. What tells them apart, without a network, is
the size of what matches: brushwork matches the style only locally (a stroke here, a colour there), so a
large patch of the output correlates weakly with every patch of the style; a copied object is a large patch
whose structure matches one place of the style closely.

So the score is template matching at a coarse resolution. The output is taken at 128 px on the long side,
its luminance band-passed (Y - G_σ * Y, σ = 1/8 of a patch: shading removed, so a sky gradient does not
match another gradient) and cut into square patches a quarter of its short side wide, a third of a patch
apart. Each patch is compared with the style's patches at every pixel and at 13 scales (the style's long
side 1/2 to 2 times the output's, in steps of 2^(1/6); the engine resizes the style to `style_scale` times
the output's long side, and a copy keeps the scale it was made at). The comparison is blockwise: the patch
is cut into 3 × 3 blocks, each block's normalised cross-correlation (zero mean, unit norm per block: NCC)
with the style block at the same place is computed, and the patch's correlation b is their mean. Why blocks,
equally weighted: a whole-patch NCC is dominated by its strongest feature, so a patch that is flat but for
one bright spot would match any style patch with a spot in that place; a copy matches in every block.

A close match is not yet an object: a texture with long-range order (the Scream's bands of sky, stripes, a
mosaic) matches its own style closely almost everywhere. An object matches in one place. So each patch's
best correlation b is set against r, its best at any other place of the style (more than a patch away, at
any scale), and the patch scores its distinctiveness D = (b - r) / (1 - r): the share of the gap to a
perfect match that only one place closes. The score is the best patch's D, in [0, 1]: 1 for a piece copied
as it is, 0.10 to 0.21 for the style's brushwork without its objects, 0.57 to 1 for a copied face, also faded 60 %
into the picture or 6 % off a searched scale (benchmarks/copy_cases.py); gatys.metrics.COPY_THRESHOLD = 0.4 lies
between. The raw correlation b and runner-up r come with it in `CopyMatch`.

Flat blocks carry no structure and correlate by chance (flat sky against flat sky, JPEG noise against JPEG
noise): a block whose band-passed std is under `min_std` (0.02 of the luminance range by default) counts
for nothing. On the output's side it is left out of its patch's mean, and a patch with fewer than half of
its blocks structured is not searched at all (a flat picture scores 0); on the style's side a flat window
correlates 0 with anything, so structure where the style has none is no match.

Depends on torch (and on gatys.images, gatys.errors and the input helpers of gatys.metrics.fidelity): never
on the engine, the network, the config or the jobs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gatys.errors import GatysError
from gatys.images import ImageLike, resize

from .fidelity import DEFAULT_SIZE, luminance, picture

PATCH_FRACTION = 0.25   # patch side over the output's short side, at the working size
STRIDE_FRACTION = 1 / 3  # step between output patches over the patch side
# The style's long side over the output's, searched: 1/2 to 2 in steps of 2^(1/6) (about 12 %), so a copy
# is at most 6 % off a searched scale (9 % off, with steps of 2^(1/4), a copy's correlation fell to 0.63).
STYLE_SCALES = tuple(2.0 ** (step / 6) for step in range(-6, 7))
MIN_STD = 0.02           # band-passed luminance std under which a block counts as flat
BAND_SIGMA_FRACTION = 1 / 8  # the Gaussian removed by the band-pass, σ over the patch side
GRID = 3                 # each patch is compared as grid × grid blocks


@dataclass(frozen=True)
class CopyMatch:
    """The output patch that matches one place of the style best, and only there.

    score: its distinctiveness D = (correlation - runner_up) / (1 - runner_up), in [0, 1] (0 when every
    patch was flat); correlation: its best block NCC with the style, in [-1, 1]; runner_up: its best with
    any other place of the style (more than a patch away).
    output_box, style_box: (top, left, height, width) of the two patches, in pixels of the images given.
    style_scale: the style's long side over the output's at the match.
    heat_map: (H, W) at the output's size, for each pixel the best score of any patch covering it
    (0 where every covering patch was flat).
    """

    score: float
    correlation: float
    runner_up: float
    output_box: tuple[int, int, int, int]
    style_box: tuple[int, int, int, int]
    style_scale: float
    heat_map: torch.Tensor


# ---------------------------------------------------------------------------- filtering

def _gaussian_blur(grey: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur of (1, 1, H, W), radius 3σ, reflected at the borders."""
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, grey.shape[-2] - 1, grey.shape[-1] - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=grey.dtype)
    profile = torch.exp(-offsets.square() / (2 * sigma ** 2))
    profile = profile / profile.sum()
    padded = F.pad(grey, (radius, radius, radius, radius), mode="reflect")
    blurred = F.conv2d(padded, profile.view(1, 1, 1, -1))
    return F.conv2d(blurred, profile.view(1, 1, -1, 1))


def band_pass(grey: torch.Tensor, sigma: float) -> torch.Tensor:
    """Y - G_σ * Y: the luminance less its blur, keeping structure finer than about σ.

    Why: shading and gradients larger than a patch match each other whatever the pictures are (any two
    smooth ramps correlate perfectly), and would make a sky look copied. The same σ, in working pixels,
    is applied to the output and to each scale of the style, so a copied region keeps the same band.
    """
    return grey - _gaussian_blur(grey, sigma)


# ---------------------------------------------------------------------------- patches

@dataclass(frozen=True)
class Templates:
    """The output's structured patches, each cut into grid × grid blocks ready for correlation.

    blocks: (K, N, 1, b, b), block k of patch n as (x - x̄) / ‖x - x̄‖ (zero where the block is flat);
    structured: (K, N), 1.0 where block k of patch n has std ≥ min_std, else 0.0;
    offsets: the (row, column) of each block inside its patch; corners: (N, 2) top-left of each patch.
    """

    blocks: torch.Tensor
    structured: torch.Tensor
    offsets: tuple[tuple[int, int], ...]
    corners: torch.Tensor
    patch: int

    @property
    def count(self) -> int:
        return self.corners.shape[0]

    @property
    def block(self) -> int:
        return self.blocks.shape[-1]


def unit_blocks(windows: torch.Tensor, min_std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, b²) pixel rows → rows (x - x̄) / ‖x - x̄‖ and whether each is structured (std ≥ min_std).

    Flat rows become zeros: a flat block has no structure to correlate, and 0/0 is no score.
    """
    centred = windows - windows.mean(dim=1, keepdim=True)
    std = centred.square().mean(dim=1).sqrt()
    structured = std >= min_std
    units = centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return units * structured[:, None], structured


def output_templates(grey: torch.Tensor, patch: int, grid: int, stride: int, min_std: float) -> Templates:
    """The output's patches (side `patch`, every `stride` px) as grid × grid blocks of unit templates.

    A patch is kept when at least half of its blocks are structured: a patch that is flat but for one
    bright spot would otherwise match any style patch with a spot in the same place.
    """
    block = patch // grid
    patch = block * grid
    offsets = tuple((row * block, col * block) for row in range(grid) for col in range(grid))
    rows = (grey.shape[-2] - patch) // stride + 1
    cols = (grey.shape[-1] - patch) // stride + 1
    grid_y, grid_x = torch.meshgrid(torch.arange(rows) * stride, torch.arange(cols) * stride, indexing="ij")
    corners = torch.stack([grid_y.flatten(), grid_x.flatten()], dim=1)
    units, structured = [], []
    for dy, dx in offsets:
        region = grey[..., dy:grey.shape[-2] - patch + dy + block, dx:grey.shape[-1] - patch + dx + block]
        windows = F.unfold(region, kernel_size=block, stride=stride)[0].T[:rows * cols]
        unit, flags = unit_blocks(windows, min_std)
        units.append(unit)
        structured.append(flags)
    structured_all = torch.stack(structured).float()
    kept = structured_all.sum(dim=0) >= grid * grid / 2
    blocks = torch.stack(units)[:, kept].reshape(len(offsets), int(kept.sum()), 1, block, block)
    return Templates(blocks, structured_all[:, kept], offsets, corners[kept], patch)


def window_std(grey: torch.Tensor, size: int) -> torch.Tensor:
    """The std of every size × size window, (1, 1, H, W) → (H-size+1, W-size+1), from box means."""
    local = grey.double()
    mean = F.avg_pool2d(local, size, stride=1)[0, 0]
    mean_square = F.avg_pool2d(local.square(), size, stride=1)[0, 0]
    return (mean_square - mean.square()).clamp_min(0.0).sqrt().float()


def match_scores(style_grey: torch.Tensor, templates: Templates, min_std: float) -> torch.Tensor:
    """For every patch n and style position (y, x): the mean over its structured blocks k of NCC_k.

    NCC_k = Σ t_k · w / ‖w - w̄‖ for the style window w under block k (its mean drops out because t_k has
    zero mean), 0 where that window is flat: structure in the output where the style has none is no
    match. (1, 1, H, W) → (N, H-p+1, W-p+1). Why blocks, equally weighted: a copy matches everywhere in
    the patch; a chance match of one strong feature (a pearl, a tile's corner) carries a whole-patch NCC
    but only one block's.
    """
    block, patch = templates.block, templates.patch
    height, width = style_grey.shape[-2] - patch + 1, style_grey.shape[-1] - patch + 1
    norm = (window_std(style_grey, block) * block).flatten()
    # every block × block window of the style as a column, divided by its norm once (flat ones zeroed),
    # so that each block's NCC is one matrix product
    windows = F.unfold(style_grey, kernel_size=block)[0]
    windows = windows * torch.where(norm >= min_std * block, 1.0 / norm.clamp_min(1e-12), 0.0)
    rows, cols = style_grey.shape[-2] - block + 1, style_grey.shape[-1] - block + 1
    total = torch.zeros(templates.count, height, width)
    for k, (dy, dx) in enumerate(templates.offsets):
        ncc = (templates.blocks[k].flatten(1) @ windows).view(-1, rows, cols)
        total += ncc[:, dy:dy + height, dx:dx + width]
    return total / templates.structured.sum(dim=0).view(-1, 1, 1)


# ---------------------------------------------------------------------------- the search

@dataclass(frozen=True)
class ScaleMatches:
    """Each output patch's best match in the style at one scale, and its best match away from that one.

    top, elsewhere: (N,) the best block NCC, and the best more than a patch away from it (rows or columns);
    corners: (N, 2) (top, left) of the best match in the scaled style; shape: the scaled style's (H, W).
    """

    scale: float
    top: torch.Tensor
    elsewhere: torch.Tensor
    corners: torch.Tensor
    shape: tuple[int, int]
    patch: int

    def centres(self) -> torch.Tensor:
        """(N, 2) the best matches' centres as fractions of the style's long side: comparable across scales."""
        return (self.corners.float() + self.patch / 2) / max(self.shape)

    def footprint(self) -> float:
        """A patch's side as a fraction of the style's long side at this scale."""
        return self.patch / max(self.shape)


def scale_matches(maps: torch.Tensor, scale: float, shape: tuple[int, int], patch: int) -> ScaleMatches:
    """From (N, H', W') scores: each patch's best, and its best outside the patch-sized square around it."""
    top, index = maps.flatten(1).max(dim=1)
    corners = torch.stack([index // maps.shape[-1], index % maps.shape[-1]], dim=1)
    rows = torch.arange(maps.shape[-2]).view(1, -1, 1)
    cols = torch.arange(maps.shape[-1]).view(1, 1, -1)
    near = ((rows - corners[:, 0].view(-1, 1, 1)).abs() < patch) & \
           ((cols - corners[:, 1].view(-1, 1, 1)).abs() < patch)
    elsewhere = maps.masked_fill(near, -1.0).flatten(1).max(dim=1).values
    return ScaleMatches(scale, top, elsewhere, corners, shape, patch)


def distinctiveness(best: torch.Tensor, runner_up: torch.Tensor) -> torch.Tensor:
    """D = (b - r) / (1 - r), r clamped to [0, b]: how much of the gap to a perfect match only one place closes.

    b is a patch's best correlation with the style, r its best correlation with any other place of it.
    Why: a texture with long-range order (the Scream's bands of sky, stripes, a mosaic) matches its own
    style closely almost everywhere (b ≈ r), an object matches in one place; and a piece copied as it is
    scores 1 whatever r is. 0 where the patch matches nowhere better than elsewhere.
    """
    runner_up = torch.minimum(runner_up.clamp_min(0.0), best)
    gap = (1.0 - runner_up).clamp_min(1e-6)
    return ((best - runner_up) / gap).clamp(0.0, 1.0)


def best_and_runner_up(per_scale: list[ScaleMatches]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per patch: the best correlation over all scales, the best at any other place, and the best's scale index.

    Another place is one whose centre is more than a patch away, in fractions of the style's long side, so
    that the same object found again at a neighbouring scale does not count as a second place.
    """
    tops = torch.stack([matches.top for matches in per_scale])           # (S, N)
    best, which = tops.max(dim=0)
    centres = torch.stack([matches.centres() for matches in per_scale])  # (S, N, 2)
    footprints = torch.tensor([matches.footprint() for matches in per_scale])
    chosen = centres[which, torch.arange(tops.shape[1])]                 # (N, 2)
    reach = torch.maximum(footprints.view(-1, 1), footprints[which].view(1, -1))
    same_place = ((centres - chosen).abs() < reach[..., None]).all(dim=-1)  # (S, N)
    elsewhere = torch.stack([matches.elsewhere for matches in per_scale])
    runner_up = torch.where(same_place, elsewhere, tops).max(dim=0).values
    return best, runner_up, which


def find_copied_object(output: ImageLike, style: ImageLike, size: int = DEFAULT_SIZE,
                       patch_fraction: float = PATCH_FRACTION,
                       style_scales: tuple[float, ...] = STYLE_SCALES,
                       min_std: float = MIN_STD, grid: int = GRID) -> CopyMatch:
    """The output patch that matches one place of the style, and only that one, best.

    For each output patch o: b(o) = max over style positions and `style_scales` of (1/|K|) Σ_k NCC(o_k, s_k),
    the mean normalised cross-correlation of the grid × grid blocks k of o and of the style patch s over
    the blocks K of o that are not flat; r(o) the same maximum over the style's other places (more than a
    patch from the best); the score is max over o of D = (b - r) / (1 - r) (see `distinctiveness`). Both
    pictures are band-passed luminance, Y - G_σ * Y (σ = patch / 8); the output is at `size` px long
    side, its patches squares of `patch_fraction` × its short side, a third of a patch apart; style
    patches are at every pixel of the style resized to each of `style_scales` × the output's long side.
    Why NCC: it ignores brightness and contrast, so a copied face matches when the transfer recoloured it;
    why large patches: brushwork matches locally, objects as a whole; why blocks: a copy matches in every
    part of the patch, a coincidence in one; why D: an object is in one place of the style, a texture in
    many.
    """
    output, style = picture(output, "output"), picture(style, "style")
    _check_settings(size, patch_fraction, style_scales, min_std, grid)
    small = luminance(resize(output, size=size))
    patch = max(grid, round(patch_fraction * min(small.shape[-2:])))
    sigma = patch * BAND_SIGMA_FRACTION
    templates = output_templates(band_pass(small, sigma), patch, grid,
                                 max(1, round(patch * STRIDE_FRACTION)), min_std)
    per_scale = []
    for scale in style_scales:
        scaled = luminance(resize(style, size=max(1, round(size * scale))))
        if templates.count == 0 or min(scaled.shape[-2:]) < templates.patch:
            continue
        maps = match_scores(band_pass(scaled, sigma), templates, min_std)
        per_scale.append(scale_matches(maps, scale, tuple(scaled.shape[-2:]), templates.patch))
    if not per_scale:
        empty = torch.zeros(tuple(output.shape[-2:]))
        return CopyMatch(0.0, 0.0, 0.0, (0, 0, 0, 0), (0, 0, 0, 0), 1.0, empty)
    best, runner_up, which = best_and_runner_up(per_scale)
    scores = distinctiveness(best, runner_up)
    winner = int(scores.argmax())
    at = per_scale[int(which[winner])]
    return CopyMatch(float(scores[winner]), float(best[winner]), float(runner_up[winner]),
                     _box(templates.corners[winner].tolist(), templates.patch, small.shape[-2:], output.shape[-2:]),
                     _box(at.corners[winner].tolist(), templates.patch, at.shape, style.shape[-2:]), at.scale,
                     _heat_map(scores, templates.corners, templates.patch, small.shape[-2:], output.shape[-2:]))


def copied_object_score(output: ImageLike, style: ImageLike, size: int = DEFAULT_SIZE,
                        patch_fraction: float = PATCH_FRACTION,
                        style_scales: tuple[float, ...] = STYLE_SCALES,
                        min_std: float = MIN_STD, grid: int = GRID) -> float:
    """find_copied_object(...).score, in [0, 1]: 1 for a piece of the style copied unchanged, low for texture.

    See find_copied_object for the formula, and gatys.metrics.COPY_THRESHOLD for where "copied" begins.
    """
    return find_copied_object(output, style, size, patch_fraction, style_scales, min_std, grid).score


def _check_settings(size: int, patch_fraction: float, style_scales: tuple[float, ...], min_std: float,
                    grid: int) -> None:
    """The search's settings, each refused with a message that says what is allowed."""
    if int(size) != size or size < 16:
        raise GatysError(f"the working size must be a whole number of pixels, at least 16, got {size}")
    if not 0.0 < patch_fraction <= 1.0:
        raise GatysError(f"patch_fraction must be in (0, 1], got {patch_fraction}")
    if not style_scales or any(not scale > 0 for scale in style_scales):
        raise GatysError(f"style_scales must be positive numbers, got {style_scales}")
    if not min_std >= 0:
        raise GatysError(f"min_std must be at least 0, got {min_std}")
    if int(grid) != grid or grid < 1:
        raise GatysError(f"grid must be a whole number of blocks, at least 1, got {grid}")


def _box(corner: tuple[int, int] | list[int], patch: int, working: tuple[int, int],
         original: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a working-size patch, in the original image's pixels."""
    scale_y, scale_x = original[0] / working[0], original[1] / working[1]
    return (round(corner[0] * scale_y), round(corner[1] * scale_x),
            round(patch * scale_y), round(patch * scale_x))


def _heat_map(scores: torch.Tensor, corners: torch.Tensor, patch: int, working: tuple[int, int],
              original: tuple[int, int]) -> torch.Tensor:
    """Per pixel, the best score of any kept patch covering it (0 elsewhere), at the output's size."""
    heat = torch.zeros(working)
    for score, (top, left) in zip(scores.clamp_min(0.0).tolist(), corners.tolist()):
        heat[top:top + patch, left:left + patch].clamp_(min=score)
    return F.interpolate(heat[None, None], size=tuple(original), mode="nearest")[0, 0]
