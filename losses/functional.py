"""Pure functions over feature tensors that the registered losses are built from.

Every function reduces in float32 or wider, whatever the input dtype (bf16 features
from an autocast network come in; float32 statistics go out), and keeps float64 for
float64 inputs so tests can compare against exact references.
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


def gram_matrix(feats: torch.Tensor) -> torch.Tensor:
    """Ĝ = F Fᵀ / M per batch item: (B, C, H, W) → (B, C, C) in float32 or wider, M = H·W."""
    check_features(feats)
    return _Gram.apply(feats)


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


def channel_means(feats: torch.Tensor) -> torch.Tensor:
    """μ per batch item and channel: (B, C, H, W) → (B, C)."""
    check_features(feats)
    return _wide(feats).mean(dim=(2, 3))


def channel_moments(feats: torch.Tensor, eps: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, σ) per batch item and channel, σ = sqrt(biased variance + eps): two (B, C) tensors."""
    check_features(feats)
    wide = _wide(feats)
    mean = wide.mean(dim=(2, 3))
    var = wide.var(dim=(2, 3), unbiased=False)
    return mean, torch.sqrt(var + eps)


# -- kernel MMD ------------------------------------------------------------------------
# Positions are rows here: x is (m, C), y is (n, C). A kernel sum Σ_ij k(x_i, y_j) is
# computed in tiles of at most tile × tile pairs, so no M×M matrix is ever held; its
# gradient is accumulated during the same pass (it is only m×C), so backward needs
# neither saved tiles nor a second pass.

TILE = 4096


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

    def tile(self, product: torch.Tensor, with_weights: bool):
        """(Σ k over the tile, W, w) with ∂k(x_i, y_j)/∂x_i = w·W_ij·(y_j − x_i); product is overwritten."""
        if len(self.gammas) == 1:
            values = product.clamp_max_(0).exp_()
            return values.sum(), values, 2 * self.gammas[0]
        distances = product.clamp_min_(0)
        values = [torch.exp(distances * -gamma) for gamma in self.gammas]
        weights = sum(gamma * value for gamma, value in zip(self.gammas, values)) if with_weights else None
        return sum(value.sum() for value in values), weights, 2

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

    def tile(self, product: torch.Tensor, with_weights: bool):
        """(Σ k over the tile, W, w) with ∂k(x_i, y_j)/∂x_i = w·W_ij·y_j."""
        base = product.add_(self.c)
        weights = base.pow(self.d - 1) if with_weights else None
        return base.pow(self.d).sum(), weights, self.d

    def pairs(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((a * b).sum(1) + self.c).pow(self.d)


class _KernelSum(torch.autograd.Function):
    """Σ_ij k(x_i, y_j) by tiles; y None means y = x (each unordered tile pair computed once)."""

    @staticmethod
    def forward(ctx, x, y, kernel, tile):
        symmetric = y is None
        other = x if symmetric else y
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        grad_y = torch.zeros_like(y) if not symmetric and ctx.needs_input_grad[1] else None
        with_weights = grad_x is not None or grad_y is not None
        left, right = kernel.operands(x, other)
        total = x.new_zeros(())
        for i in range(0, x.shape[0], tile):
            rows = slice(i, i + tile)
            for j in range(i if symmetric else 0, other.shape[0], tile):
                cols = slice(j, j + tile)
                tile_sum, weights, scale = kernel.tile(left[rows] @ right[cols].T, with_weights)
                mirrored = symmetric and j != i  # stands for the (j, i) tile as well
                total = total + (2 * tile_sum if mirrored else tile_sum)
                if not with_weights:
                    continue
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
        return grads[0], grads[1], None, None


def _accumulate(out, weights, scale, partners, own, radial):
    """out += w·Σ_j W_ij·(p_j − x_i) for a radial kernel, w·Σ_j W_ij·p_j otherwise."""
    step = weights @ partners
    if radial:
        step -= weights.sum(1, keepdim=True) * own
    out.add_(scale * step)


def kernel_sum(x: torch.Tensor, y: torch.Tensor | None, kernel, tile: int = TILE) -> torch.Tensor:
    """Σ_ij k(x_i, y_j) over rows of x (m, C) and y (n, C), or over x × x when y is None.

    Exact, in tiles of at most tile × tile pairs; differentiable once in x and y.
    """
    return _KernelSum.apply(x, y, kernel, tile)


def kernel_mmd(x: torch.Tensor, y: torch.Tensor, kernel, estimator: str = "biased", tile: int = TILE,
               y_term: torch.Tensor | None = None) -> torch.Tensor:
    """MMD² between the rows of x (m, C) and y (n, C).

    biased    (V)  Σk(x,x')/m² + Σk(y,y')/n² − 2Σk(x,y)/(mn)
    unbiased  (U)  the same with the i = j terms left out of the first two sums
    linear         Gretton's linear-time estimator (1/P)·Σ_p h_p over P = ⌊min(m, n)/2⌋ quadruples
                   (x_2p, x_2p+1, y_2p, y_2p+1) in the given row order,
                   h = k(x, x') + k(y, y') − k(x, y') − k(x', y)
    y_term is the precomputed y-only term (`kernel_self_term(y, …)`), a constant of the target.
    """
    if estimator == "linear":
        pairs = min(x.shape[0], y.shape[0]) // 2
        x0, x1 = x[0 : 2 * pairs : 2], x[1 : 2 * pairs : 2]
        y0, y1 = y[0 : 2 * pairs : 2], y[1 : 2 * pairs : 2]
        h = kernel.pairs(x0, x1) + kernel.pairs(y0, y1) - kernel.pairs(x0, y1) - kernel.pairs(x1, y0)
        return h.mean()
    if y_term is None:
        y_term = kernel_self_term(y, kernel, estimator, tile)
    cross = kernel_sum(x, y, kernel, tile) / (x.shape[0] * y.shape[0])
    return kernel_self_term(x, kernel, estimator, tile) + y_term - 2 * cross


def kernel_self_term(x: torch.Tensor, kernel, estimator: str = "biased", tile: int = TILE) -> torch.Tensor:
    """Σ_ij k(x_i, x_j)/m² (biased), or Σ_{i≠j} k(x_i, x_j)/(m(m−1)) (unbiased)."""
    count = x.shape[0]
    total = kernel_sum(x, None, kernel, tile)
    if estimator == "biased":
        return total / count**2
    diagonal = kernel.pairs(x, x).sum()
    return (total - diagonal) / (count * (count - 1))


def mean_squared_distance(positions: torch.Tensor) -> torch.Tensor:
    """mean_ij ‖s_i − s_j‖² over all ordered pairs of columns of (C, M) = 2·tr Σ, in closed form."""
    centred = positions - positions.mean(dim=1, keepdim=True)
    return 2 * centred.square().sum(0).mean()


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
