"""Pure functions over feature tensors that the registered losses are built from.

Every function reduces in float32 or wider, whatever the input dtype (bf16 features
from an autocast network come in; float32 statistics go out), and keeps float64 for
float64 inputs so tests can compare against exact references.

Position weights w (1 or B, 1, H, W), where a function takes them, are constants: each
statistic becomes its weighted form normalised by Σ_p w_p (the mean Σ w f / Σ w), and
weights=None runs the unweighted code unchanged.
"""
from __future__ import annotations

import contextlib

import torch

from .base import check_features


def _wide(x: torch.Tensor) -> torch.Tensor:
    """x in float32, or float64 if it already is."""
    return x if x.dtype == torch.float64 else x.float()


def style_positions(feats: torch.Tensor) -> torch.Tensor:
    """Style features (B, C, H, W) → (C, B·H·W): every position of every image is one sample."""
    check_features(feats, "style features")
    return _wide(feats).transpose(0, 1).flatten(1)


def position_columns(feats: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, C, M): F of each batch item, positions as columns."""
    check_features(feats)
    return _wide(feats).flatten(2)


def position_rows(feats: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, M, C), contiguous: each batch item's positions as rows (samples)."""
    return position_columns(feats).transpose(1, 2).contiguous()


def _weights_like(weights: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """Position weights (1 or B, 1, H, W) as constants in feats' statistics dtype, on feats' device.

    Weights made under torch.inference_mode are copied outside it: autograd may save them.
    """
    dtype = torch.float64 if feats.dtype == torch.float64 else torch.float32
    weights = weights.detach().to(feats.device, dtype)
    return weights.clone() if weights.is_inference() and not torch.is_inference_mode_enabled() else weights


def sample_weights(weights: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """The weight of each position of each batch item (the rows of `position_rows`): (1 or B, 1, H, W) → (B, M)."""
    return _weights_like(weights, feats).flatten(1).expand(feats.shape[0], -1)


def style_weights(weights: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """The weight of each column of `style_positions(feats)`: (1 or B, 1, H, W) → (B·H·W,)."""
    return sample_weights(weights, feats).reshape(-1)


def positive_samples(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the indices of the positive entries of a weight vector (n,), those entries divided by their sum).

    Their count is data-dependent: this reads the device on the host.
    """
    kept = torch.nonzero(weights > 0).squeeze(1)
    chosen = weights[kept]
    return kept, chosen / chosen.sum()


def gram_matrix(feats: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Ĝ = F Fᵀ / M per batch item: (B, C, H, W) → (B, C, C) in float32 or wider, M = H·W.

    With weights (1 or B, 1, H, W): Ĝ = Σ_p w_p f_p f_pᵀ / Σ_p w_p, computed as Ĝ(F∘√w)·M/Σw,
    which is the unweighted Ĝ exactly for w = 1 (for bf16 features √w is rounded to bf16).
    """
    check_features(feats)
    if weights is None:
        return _Gram.apply(feats)
    wide = _weights_like(weights, feats)
    totals = wide.sum(dim=(1, 2, 3))
    positions = feats.shape[2] * feats.shape[3]
    return _Gram.apply(feats * wide.sqrt().to(feats.dtype)) * (positions / totals)[:, None, None]


def _positions_view(feats: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """A copy-free 2-D view per batch item: (B, M, C) rows for channels_last memory, else (B, C, M) columns."""
    if feats.dim() == 4 and not feats.is_contiguous() and feats.is_contiguous(memory_format=torch.channels_last):
        return feats.permute(0, 2, 3, 1).flatten(1, 2), True
    return feats.flatten(2), False


class _Gram(torch.autograd.Function):
    """Ĝ = F Fᵀ/M with a one-matmul backward, ∂L/∂F = F (g + gᵀ)/M, in the input's layout and dtype.

    Autograd's own backward of F @ Fᵀ does two matmuls and a strided add, and a flatten of
    channels_last features copies them to the other layout and back. Ĝ is accumulated in
    float32 or wider whatever F's dtype; for bf16 features (a bf16 network's) the backward
    runs in bf16, the dtype the gradient goes back into the network in, which is several
    times faster on CPUs with bf16 matrix units (docs/performance.md).
    """

    @staticmethod
    def forward(ctx, feats: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(feats)
        flat, rows = _positions_view(feats)
        wide = _wide(flat)
        positions = feats.shape[2] * feats.shape[3]
        with _exact_bf16_products(feats.dtype):
            # One 2-D matmul per batch item: CPU batched matmuls of these shapes are slower.
            grams = [item.T @ item if rows else item @ item.T for item in wide]
        return _stacked(grams) / positions

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (feats,) = ctx.saved_tensors
        flat, rows = _positions_view(feats)
        symmetric = ((grad + grad.transpose(1, 2)) / (feats.shape[2] * feats.shape[3])).to(feats.dtype)
        # Written into a tensor of feats' own layout, not returned as a view of one, so autograd
        # can add the network's gradient into it in place.
        result = torch.empty_like(feats)
        for item, weights, out in zip(flat, symmetric, _positions_view(result)[0]):
            if rows:
                torch.mm(item, weights, out=out)
            else:
                torch.mm(weights, item, out=out)
        return result


def _stacked(items: list[torch.Tensor]) -> torch.Tensor:
    """torch.stack without its copy for the usual single item."""
    return items[0].unsqueeze(0) if len(items) == 1 else torch.stack(items)


@contextlib.contextmanager
def _exact_bf16_products(dtype: torch.dtype):
    """For float32 copies of bf16 values, let oneDNN multiply them in bf16 (the products are exact,
    the sums stay float32), which is 2–4× faster on CPUs with bf16 units; otherwise a no-op."""
    matmul = getattr(torch.backends.mkldnn, "matmul", None)
    if dtype != torch.bfloat16 or matmul is None or not hasattr(matmul, "fp32_precision"):
        yield
        return
    previous = matmul.fp32_precision
    matmul.fp32_precision = "bf16"
    try:
        yield
    finally:
        matmul.fp32_precision = previous


def channel_means(feats: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """μ per batch item and channel: (B, C, H, W) → (B, C); with weights μ = Σ_p w_p f_p / Σ_p w_p."""
    check_features(feats)
    if weights is None:
        return _wide(feats).mean(dim=(2, 3))
    wide = _weights_like(weights, feats)
    return (_wide(feats) * wide).sum(dim=(2, 3)) / wide.sum(dim=(2, 3))


def channel_moments(feats: torch.Tensor, eps: float = 0.0,
                    weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, σ) per batch item and channel, σ = sqrt(biased variance + eps): two (B, C) tensors.

    With weights: μ = Σ w f / Σ w and variance Σ w (f − μ)² / Σ w.
    """
    check_features(feats)
    wide = _wide(feats)
    if weights is None:
        mean = wide.mean(dim=(2, 3))
        var = wide.var(dim=(2, 3), unbiased=False)
        return mean, torch.sqrt(var + eps)
    position_weights = _weights_like(weights, feats)
    totals = position_weights.sum(dim=(2, 3))
    mean = (wide * position_weights).sum(dim=(2, 3)) / totals
    var = ((wide - mean[:, :, None, None]).square() * position_weights).sum(dim=(2, 3)) / totals
    return mean, torch.sqrt(var + eps)


# Statistics of a style's positions, the columns of `style_positions` (C, n), each weighted by
# weights (n,) when given.


def column_mean(positions: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """μ = mean of the columns of (C, n), or Σ_j w_j s_j / Σ_j w_j: (C,)."""
    if weights is None:
        return positions.mean(dim=1)
    return (positions * weights).sum(dim=1) / weights.sum()


def column_raw_moment(positions: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Ĝ = S Sᵀ/n, or Σ_j w_j s_j s_jᵀ / Σ_j w_j (as (S∘√w)(S∘√w)ᵀ/Σw, exact for w = 1): (C, C)."""
    if weights is None:
        return positions @ positions.T / positions.shape[1]
    rooted = positions * weights.sqrt()
    return rooted @ rooted.T / weights.sum()


def column_variance(positions: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Biased variance per row of (C, n), or Σ_j w_j (s_j − μ)² / Σ_j w_j: (C,)."""
    if weights is None:
        return positions.var(dim=1, unbiased=False)
    centred = positions - column_mean(positions, weights)[:, None]
    return (centred.square() * weights).sum(dim=1) / weights.sum()


# -- statistics that add over tiles (gatys/tiling.py) -----------------------------------------


def position_sums(feats: torch.Tensor, weights: torch.Tensor | None = None, first: bool = True,
                  second: str | None = None) -> dict[str, torch.Tensor]:
    """Sums over positions per batch item, which add over tiles of an image (w = 1 without weights):

        count = Σ_p w_p (B,)    first = Σ_p w_p f_p (B, C)
        second = Σ_p w_p f_p f_pᵀ (B, C, C) for "outer", Σ_p w_p f_p² (B, C) for "square"
    """
    check_features(feats)
    wide = _wide(feats)
    positions = feats.shape[2] * feats.shape[3]
    weighted = None if weights is None else _weights_like(weights, feats)
    if weighted is None:
        count = wide.new_full((feats.shape[0],), float(positions))
    else:
        count = weighted.sum(dim=(1, 2, 3)).expand(feats.shape[0])
    sums = {"count": count}
    if first:
        sums["first"] = wide.sum(dim=(2, 3)) if weighted is None else (wide * weighted).sum(dim=(2, 3))
    if second == "outer":  # Ĝ(F∘√w)·M: a tile whose weights are all 0 gives 0, not 0/0
        rooted = feats if weighted is None else feats * weighted.sqrt().to(feats.dtype)
        sums["second"] = _Gram.apply(rooted) * float(positions)
    elif second == "square":
        squares = wide.square()
        sums["second"] = squares.sum(dim=(2, 3)) if weighted is None else (squares * weighted).sum(dim=(2, 3))
    return sums


def position_means(sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The averages of `position_sums` (each sum over its count): μ, and Ĝ or the mean square."""
    count = sums["count"]
    return {key: value / count.reshape(-1, *([1] * (value.dim() - 1)))
            for key, value in sums.items() if key != "count"}


# -- kernel MMD ------------------------------------------------------------------------
# Positions are rows here: x is (m, C), y is (n, C). A kernel sum Σ_ij k(x_i, y_j) is
# computed in tiles of at most tile × tile pairs, so no M×M matrix is ever held; its
# gradient is accumulated during the same pass (it is only m×C), so backward needs
# neither saved tiles nor a second pass. Weighted, the sum is Σ_ij a_i b_j k(x_i, y_j):
# each tile's values and its derivative factor W are multiplied by the outer product of
# its rows' weights.


TILE = 4096


def _tile_sum(values: torch.Tensor, outer: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """Σ_ij v_ij, or Σ_ij a_i·v_ij·b_j for outer = (a, b)."""
    return values.sum() if outer is None else outer[0] @ values @ outer[1]


class GaussianKernel:
    """k(x, y) = Σ_s exp(−γ_s‖x − y‖²), γ_s = 1/(2σ_s²): one kernel or a sum of several."""

    radial = True

    def __init__(self, gammas: torch.Tensor):
        self.gammas = gammas.reshape(-1)

    def operands(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows a, b with a_i·b_j = −γ‖x_i − y_j‖² (one γ) or ‖x_i − y_j‖² (several): one matmul per tile."""
        sq_x, sq_y = x.square().sum(1, keepdim=True), y.square().sum(1, keepdim=True)
        ones_x, ones_y = torch.ones_like(sq_x), torch.ones_like(sq_y)
        if len(self.gammas) == 1:
            gamma = self.gammas[0]
            return torch.cat([2 * gamma * x, -gamma * sq_x, ones_x], 1), torch.cat([y, ones_y, -gamma * sq_y], 1)
        return torch.cat([-2 * x, sq_x, ones_x], 1), torch.cat([y, ones_y, sq_y], 1)

    def tile(self, product: torch.Tensor, with_weights: bool, outer=None):
        """(Σ k over the tile (Σ a_i b_j k for outer = (a, b)), W, w) with
        ∂k(x_i, y_j)/∂x_i = w·W_ij·(y_j − x_i); product is overwritten."""
        if len(self.gammas) == 1:
            values = product.clamp_max_(0).exp_()
            return _tile_sum(values, outer), values, 2 * self.gammas[0]
        distances = product.clamp_min_(0)
        values = [torch.exp(distances * -gamma) for gamma in self.gammas]
        weights = sum(gamma * value for gamma, value in zip(self.gammas, values)) if with_weights else None
        return sum(_tile_sum(value, outer) for value in values), weights, 2

    def pairs(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """k(a_i, b_i) for paired rows."""
        distances = (a - b).square().sum(1)
        return torch.exp(-self.gammas[:, None] * distances).sum(0)


class PolynomialKernel:
    """k(x, y) = (xᵀy + c)^d."""

    radial = False

    def __init__(self, c: float, d: int):
        self.c = c
        self.d = d

    def operands(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y

    def tile(self, product: torch.Tensor, with_weights: bool, outer=None):
        """(Σ k over the tile (Σ a_i b_j k for outer = (a, b)), W, w) with ∂k(x_i, y_j)/∂x_i = w·W_ij·y_j."""
        base = product.add_(self.c)
        weights = base.pow(self.d - 1) if with_weights else None
        return _tile_sum(base.pow(self.d), outer), weights, self.d

    def pairs(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((a * b).sum(1) + self.c).pow(self.d)


class _KernelSum(torch.autograd.Function):
    """Σ_ij a_i b_j k(x_i, y_j) by tiles (a, b None: all ones); y None means y = x and b = a (each
    unordered tile pair computed once). a and b are constants."""

    @staticmethod
    def forward(ctx, x, y, kernel, tile, x_weights=None, y_weights=None):
        symmetric = y is None
        other = x if symmetric else y
        weighted = x_weights is not None or y_weights is not None
        if weighted:
            x_weights = x.new_ones(x.shape[0]) if x_weights is None else x_weights
            other_weights = x_weights if symmetric else y.new_ones(y.shape[0]) if y_weights is None else y_weights
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        grad_y = torch.zeros_like(y) if not symmetric and ctx.needs_input_grad[1] else None
        with_weights = grad_x is not None or grad_y is not None
        left, right = kernel.operands(x, other)
        total = x.new_zeros(())
        for i in range(0, x.shape[0], tile):
            rows = slice(i, i + tile)
            for j in range(i if symmetric else 0, other.shape[0], tile):
                cols = slice(j, j + tile)
                outer = (x_weights[rows], other_weights[cols]) if weighted else None
                tile_sum, weights, scale = kernel.tile(left[rows] @ right[cols].T, with_weights, outer)
                mirrored = symmetric and j != i  # stands for the (j, i) tile as well
                total = total + (2 * tile_sum if mirrored else tile_sum)
                if not with_weights:
                    continue
                if weighted:  # after the tile's sum: W may be its values
                    weights = weights.mul_(outer[0][:, None]).mul_(outer[1])
                if symmetric:
                    scale = 2 * scale  # x is both arguments
                if grad_x is not None:
                    _accumulate(grad_x[rows], weights, scale, other[cols], x[rows], kernel.radial)
                if mirrored:
                    _accumulate(grad_x[cols], weights.T, scale, x[rows], x[cols], kernel.radial)
                if grad_y is not None:
                    _accumulate(grad_y[cols], weights.T, scale, x[rows], y[cols], kernel.radial)
        ctx.save_for_backward(*(grad for grad in (grad_x, grad_y) if grad is not None))
        ctx.has_grads = (grad_x is not None, grad_y is not None)
        return total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_total):
        saved = iter(ctx.saved_tensors)
        grads = [grad_total * next(saved) if has else None for has in ctx.has_grads]
        return grads[0], grads[1], None, None, None, None


def _accumulate(out, weights, scale, partners, own, radial):
    """out += w·Σ_j W_ij·(p_j − x_i) for a radial kernel, w·Σ_j W_ij·p_j otherwise."""
    step = weights @ partners
    if radial:
        step -= weights.sum(1, keepdim=True) * own
    out.add_(scale * step)


def kernel_sum(x: torch.Tensor, y: torch.Tensor | None, kernel, tile: int = TILE,
               x_weights: torch.Tensor | None = None, y_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_ij k(x_i, y_j) over rows of x (m, C) and y (n, C), or over x × x when y is None.

    With row weights a = x_weights (m,) and b = y_weights (n,) (ones where one is None; b = a
    when y is None): Σ_ij a_i b_j k(x_i, y_j). Exact, in tiles of at most tile × tile pairs;
    differentiable once in x and y (the weights are constants).
    """
    return _KernelSum.apply(x, y, kernel, tile, x_weights, y_weights)


def _uniform(rows: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """weights, or 1/m for each of the m rows."""
    return rows.new_full((rows.shape[0],), 1 / rows.shape[0]) if weights is None else weights


def _quadruple_weights(weights: torch.Tensor | None, pairs: int) -> torch.Tensor | float:
    """w_2p·w_2p+1 for p < pairs (1 without weights)."""
    return 1.0 if weights is None else weights[0 : 2 * pairs : 2] * weights[1 : 2 * pairs : 2]


def kernel_mmd(x: torch.Tensor, y: torch.Tensor, kernel, estimator: str = "biased", tile: int = TILE,
               y_term: torch.Tensor | None = None, *, x_weights: torch.Tensor | None = None,
               y_weights: torch.Tensor | None = None) -> torch.Tensor:
    """MMD² between the rows of x (m, C) and y (n, C).

    biased    (V)  Σk(x,x')/m² + Σk(y,y')/n² − 2Σk(x,y)/(mn)
    unbiased  (U)  the same with the i = j terms left out of the first two sums
    linear         Gretton's linear-time estimator (1/P)·Σ_p h_p over P = ⌊min(m, n)/2⌋ quadruples
                   (x_2p, x_2p+1, y_2p, y_2p+1) in the given row order,
                   h = k(x, x') + k(y, y') − k(x, y') − k(x', y)
    y_term is the precomputed y-only term (`kernel_self_term(y, …)`), a constant of the target.

    With sample weights a = x_weights (m,), b = y_weights (n,), each summing to one (None:
    uniform), the mean embeddings are weighted: biased Σ a_i a_j k(x_i, x_j) + Σ b_i b_j k(y_i, y_j)
    − 2 Σ a_i b_j k(x_i, y_j), unbiased with the self terms of `kernel_self_term`, and linear
    Σ_p ω_p h_p / Σ_p ω_p with ω_p = a_2p a_2p+1 b_2p b_2p+1 (self-normalised importance weights:
    the quadruples stand for draws from the weighted distributions; positive weights only).
    """
    weighted = x_weights is not None or y_weights is not None
    if estimator == "linear":
        pairs = min(x.shape[0], y.shape[0]) // 2
        x0, x1 = x[0 : 2 * pairs : 2], x[1 : 2 * pairs : 2]
        y0, y1 = y[0 : 2 * pairs : 2], y[1 : 2 * pairs : 2]
        h = kernel.pairs(x0, x1) + kernel.pairs(y0, y1) - kernel.pairs(x0, y1) - kernel.pairs(x1, y0)
        if not weighted:
            return h.mean()
        omega = _quadruple_weights(x_weights, pairs) * _quadruple_weights(y_weights, pairs)
        return (omega * h).sum() / omega.sum()
    if not weighted:
        if y_term is None:
            y_term = kernel_self_term(y, kernel, estimator, tile)
        cross = kernel_sum(x, y, kernel, tile) / (x.shape[0] * y.shape[0])
        return kernel_self_term(x, kernel, estimator, tile) + y_term - 2 * cross
    if y_term is None:
        y_term = kernel_self_term(y, kernel, estimator, tile, y_weights)
    cross = kernel_sum(x, y, kernel, tile, _uniform(x, x_weights), _uniform(y, y_weights))
    return kernel_self_term(x, kernel, estimator, tile, x_weights) + y_term - 2 * cross


def kernel_self_term(x: torch.Tensor, kernel, estimator: str = "biased", tile: int = TILE,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_ij k(x_i, x_j)/m² (biased), or Σ_{i≠j} k(x_i, x_j)/(m(m−1)) (unbiased).

    With weights a (m,) summing to one: Σ_ij a_i a_j k_ij (biased), or
    (Σ_ij a_i a_j k_ij − Σ_i a_i² k_ii)/(1 − Σ_i a_i²) (unbiased: the U-statistic over the
    selected rows for 0/1 weights; it needs two positive weights).
    """
    if weights is not None:
        total = kernel_sum(x, None, kernel, tile, weights)
        if estimator == "biased":
            return total
        squares = weights.square()
        return (total - (squares * kernel.pairs(x, x)).sum()) / (1 - squares.sum())
    count = x.shape[0]
    total = kernel_sum(x, None, kernel, tile)
    if estimator == "biased":
        return total / count**2
    diagonal = kernel.pairs(x, x).sum()
    return (total - diagonal) / (count * (count - 1))


def mean_squared_distance(positions: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """mean_ij ‖s_i − s_j‖² over all ordered pairs of columns of (C, M) = 2·tr Σ, in closed form.

    With weights w (M,): Σ_ij a_i a_j ‖s_i − s_j‖² = 2·Σ_i a_i ‖s_i − μ‖², a = w/Σw, μ = Σ a_i s_i.
    """
    if weights is None:
        centred = positions - positions.mean(dim=1, keepdim=True)
        return 2 * centred.square().sum(0).mean()
    centred = positions - column_mean(positions, weights)[:, None]
    return 2 * (centred.square().sum(0) * weights).sum() / weights.sum()


def random_indices(total: int, count: int | None, seed: int) -> torch.Tensor:
    """The first `count` entries (all if None) of a permutation of range(total) fixed by seed (CPU)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:count]


# -- Gaussian W2 -------------------------------------------------------------------------


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix by eigh (negative eigenvalues clipped); no gradient use."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt().unsqueeze(-2)) @ vectors.transpose(-1, -2)


def trace_sqrtm_psd(matrix: torch.Tensor, floor: float) -> torch.Tensor:
    """tr(A^½) = Σ√λ(A) for symmetric PSD A, eigenvalues clamped at floor > 0.

    Only eigenvalues are used, so the gradient ½·A^(−½) (through eigvalsh) is well defined
    even for repeated eigenvalues, and bounded by the floor.
    """
    return torch.linalg.eigvalsh(matrix).clamp_min(floor).sqrt().sum(-1)


def gaussian_w2(mean: torch.Tensor, cov: torch.Tensor, target_mean: torch.Tensor, target_cov_sqrt: torch.Tensor,
                target_cov_trace: torch.Tensor, floor: float) -> torch.Tensor:
    """W2² between N(μ, Σ) (batched: (B, C), (B, C, C)) and N(μ_t, Σ_t) given Σ_t^½ and tr Σ_t:

        ‖μ − μ_t‖² + tr Σ + tr Σ_t − 2·tr((Σ_t^½ Σ Σ_t^½)^½)
    """
    cross = target_cov_sqrt @ cov @ target_cov_sqrt
    cross = (cross + cross.transpose(-1, -2)) / 2  # symmetric up to rounding; eigvalsh reads one triangle
    traces = cov.diagonal(dim1=-2, dim2=-1).sum(-1) + target_cov_trace - 2 * trace_sqrtm_psd(cross, floor)
    return (mean - target_mean).square().sum(-1) + traces


# -- sliced Wasserstein ---------------------------------------------------------------------


def random_directions(count: int, channels: int, seed: int) -> torch.Tensor:
    """count unit vectors in R^channels, uniform on the sphere, fixed by seed: (count, channels), float64, CPU."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(count, channels, generator=generator, dtype=torch.float64)
    return directions / directions.norm(dim=1, keepdim=True)


def sorted_projections(positions: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """sort(Vᵀs) per direction: positions (…, C, M), directions (P, C) → (…, P, M), ascending."""
    return torch.sort(directions @ positions, dim=-1).values


def resample_quantiles(sorted_values: torch.Tensor, count: int) -> torch.Tensor:
    """(P, M) sorted → (P, count): the empirical quantile function at (k + ½)/count, linearly interpolated.

    Sample j of M sits at quantile (j + ½)/M, so for count = M this returns the input.
    """
    size = sorted_values.shape[-1]
    if size == count:
        return sorted_values
    where = (torch.arange(count, device=sorted_values.device, dtype=torch.float64) + 0.5) * size / count - 0.5
    where = where.clamp(0, size - 1)
    low = where.floor().long()
    high = (low + 1).clamp_max(size - 1)
    fraction = (where - low).to(sorted_values.dtype)
    return torch.lerp(sorted_values[..., low], sorted_values[..., high], fraction)


def sliced_wasserstein(positions: torch.Tensor, target_sorted: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """mean over directions v and ranks k of (sort(vᵀf)_k − q_k)²: positions (…, C, M) → (…).

    target_sorted (P, M) holds the style's sorted projections at the output's M quantiles
    (`sorted_projections`, then `resample_quantiles`).
    """
    return (sorted_projections(positions, directions) - target_sorted).square().mean(dim=(-2, -1))


# Weighted empirical quantile functions. A sample of weight a_j (Σa = 1) in sorted order sits at
# the mid-point u_j = C_j − a_j/2 of its share of [0, 1], C the cumulative sum; unweighted,
# u_j = (j + ½)/M, the rule `resample_quantiles` reads.


def midpoints(weights: torch.Tensor) -> torch.Tensor:
    """u_j = C_j − a_j/2 for weights (…, M) in sorted order, each row summing to one."""
    return weights.cumsum(-1) - weights / 2


def uniform_midpoints(count: int, like: torch.Tensor) -> torch.Tensor:
    """(j + ½)/count, j < count, in like's dtype and device: the mid-points of unweighted samples."""
    return (torch.arange(count, device=like.device, dtype=torch.float64) + 0.5).div_(count).to(like.dtype)


def weighted_sorted_projections(positions: torch.Tensor, weights: torch.Tensor,
                                directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sort(Vᵀs), the mid-points of the sorted samples): positions (C, n), weights (n,) summing to one,
    directions (P, C) → two (P, n)."""
    values, order = torch.sort(directions @ positions, dim=-1)
    return values, midpoints(weights[order])


def quantile_function(sorted_values: torch.Tensor, points: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """Q(u) per row: the linear interpolation through (points_j, sorted_j), constant beyond the first and last.

    sorted_values and points (…, n), points increasing; at (…, K) → (…, K). With points
    (j + ½)/n and at (k + ½)/K this is `resample_quantiles`.
    """
    size = sorted_values.shape[-1]
    if size == 1:
        return sorted_values.expand(*at.shape)
    high = torch.searchsorted(points, at.contiguous()).clamp_(1, size - 1)
    low = high - 1
    below, above = points.gather(-1, low), points.gather(-1, high)
    fraction = ((at - below) / (above - below).clamp_min(torch.finfo(points.dtype).tiny)).clamp_(0, 1)
    return torch.lerp(sorted_values.gather(-1, low), sorted_values.gather(-1, high), fraction.to(sorted_values.dtype))


def weighted_sliced_wasserstein(positions: torch.Tensor, weights: torch.Tensor, target_sorted: torch.Tensor,
                                target_points: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """mean over directions of Σ_p a_p (sort(vᵀf)_p − Q_S(u_p))², a the weights (M,) in sorted order
    (summing to one), u_p their mid-points: positions (C, M) → a scalar.

    Q_S is the style's quantile function through its sorted projections target_sorted (P, n)
    at their mid-points target_points (P, n) (`quantile_function`). For a = 1/M this is
    `sliced_wasserstein` with the style read at (k + ½)/M.
    """
    values, order = torch.sort(directions @ positions, dim=-1)
    with torch.no_grad():
        shares = weights[order]
        quantiles = quantile_function(target_sorted, target_points, midpoints(shares))
    return (shares * (values - quantiles).square()).sum(-1).mean()
