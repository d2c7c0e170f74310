"""3×3 convolution (stride 1, padding 1) by Winograd's F(4×4, 3×3), for the float32 CPU path.

Each 4×4 block of the output comes from a 6×6 tile of the (padded) input:

    Y = Aᵀ [ (G w Gᵀ) ⊙ (Bᵀ d B) ] A        summed over input channels

so a block takes 36 multiplications per channel pair instead of 144: the channel sums
become 36 independent matrix products (tiles × C_in)·(C_in × C_out), 2.25 rather than 9
multiply-adds per output element. The weights are transformed once (U = G w Gᵀ, 4× the
memory of w); each call gathers the input tiles and transforms them with one small matrix
product, runs the 36 products as one batched one, and transforms back with another.
The transforms amplify rounding (their constants go up to 8): in float32 the result differs
from the direct convolution by about 1e-5 of its largest value, ~100 units of float32's
rounding; bf16's unit is 65,000× larger, so bf16 stays on the direct convolution. Matrices
from Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016), points 0,
±1, ±2, ∞. One image at a time (batch 1), as the engine optimises them.

It pays where the products outweigh the transforms and reading U (see `pays`); measured
layer by layer in docs/performance.md.
"""
from __future__ import annotations

import torch

_BT = ((4, 0, -5, 0, 1, 0),
       (0, -4, -4, 1, 1, 0),
       (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0),
       (0, 2, -1, -2, 1, 0),
       (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0),
      (-1 / 6, -1 / 6, -1 / 6),
      (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6),
      (1 / 24, -1 / 12, 1 / 6),
      (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0),
       (0, 1, -1, 2, -2, 0),
       (0, 1, 1, 4, 4, 0),
       (0, 1, -1, 8, -8, 1))
TILE, OUT = 6, 4                # input tile and output block sides
_BIAS_INDEX = 1 * TILE + 1      # Aᵀ e₁ = (1, 1, 1, 1): a bias added at transformed index (1, 1) reaches every output
MIN_CHANNEL_SUM = 384           # C_in + C_out below this: the transforms' memory passes cost what the products save
MIN_TILES = 24                  # fewer 4×4 output blocks: reading U (4× the weights) costs what the products save


def pays(c_in: int, c_out: int, height: int, width: int) -> bool:
    """Whether Winograd beats the direct float32 convolution for this layer and map size (on
    the 2-core AVX-512 machine of docs/performance.md: 128→256 channels and up, 24 blocks and up)."""
    return c_in + c_out >= MIN_CHANNEL_SUM and -(-height // OUT) * -(-width // OUT) >= MIN_TILES


def transform_matrices() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Bᵀ, G, Aᵀ) as float64 tensors."""
    return tuple(torch.tensor(m, dtype=torch.float64) for m in (_BT, _G, _AT))


_BT64, _, _AT64 = transform_matrices()
_INPUT_TRANSFORM = torch.kron(_BT64, _BT64).float()     # (36, 36): 6×6 tile d ↦ Bᵀ d B, flattened
_OUTPUT_TRANSFORM = torch.kron(_AT64, _AT64).float()    # (16, 36): M ↦ Aᵀ M A, flattened


class WinogradWeights:
    """A conv weight (C_out, C_in, 3, 3) transformed once into U (36, C_in, C_out), float32.

    The network's backward needs conv(·, w̃) too (w̃: in and out swapped, flipped): it gets its
    own WinogradWeights. Sharing U through the transposed products would save that memory but
    cost time: MKL runs ∂M·Uᵀ slower than V·U (measured in docs/performance.md).
    """

    def __init__(self, weight: torch.Tensor, chunk: int = 64):
        g = transform_matrices()[1]
        c_out, c_in = weight.shape[:2]
        self.u = torch.empty(TILE * TILE, c_in, c_out)
        for start in range(0, c_out, chunk):  # in float64, a few output channels at a time: small temporaries
            part = torch.einsum("ai,kcij,bj->abck", g, weight[start:start + chunk].detach().double(), g)
            self.u[:, :, start:start + chunk] = part.reshape(TILE * TILE, c_in, -1)

    def conv(self, x: torch.Tensor, bias: torch.Tensor | None = None, relu: bool = False,
             add: torch.Tensor | None = None) -> torch.Tensor:
        """conv(x, w) + bias, then ReLU'd or plus `add`; x (1, C_in, H, W) float32, output in x's memory format."""
        if x.shape[0] != 1:
            raise ValueError(f"Winograd conv takes one image at a time, not a batch of {x.shape[0]}")
        _, c_in, height, width = x.shape
        tiles_y, tiles_x = -(-height // OUT), -(-width // OUT)
        padded = x.new_zeros(OUT * tiles_y + 2, OUT * tiles_x + 2, c_in)
        padded[1:height + 1, 1:width + 1].copy_(_hwc(x))
        tiles = _grid(padded, tiles_y, TILE, tiles_x, TILE).permute(1, 3, 0, 2, 4)  # (6, 6, tiles_y, tiles_x, C)
        transformed = torch.mm(_INPUT_TRANSFORM, tiles.reshape(TILE * TILE, -1))
        products = torch.bmm(transformed.view(TILE * TILE, tiles_y * tiles_x, c_in), self.u)
        if bias is not None:
            products[_BIAS_INDEX].add_(bias)
        blocks = torch.mm(_OUTPUT_TRANSFORM, products.view(TILE * TILE, -1))
        blocks = blocks.view(OUT, OUT, tiles_y, tiles_x, -1).permute(2, 0, 3, 1, 4)
        out = _empty_like_layout(x, self.u.shape[2])
        for part, target, extra in _block_regions(blocks, _hwc(out), None if add is None else _hwc(add)):
            if relu:
                torch.clamp_min(part, 0, out=target)
            elif extra is not None:
                torch.add(part, extra, out=target)
            else:
                target.copy_(part)
        return out


def _grid(t: torch.Tensor, n_y: int, rows: int, n_x: int, cols: int, row0: int = 0, col0: int = 0) -> torch.Tensor:
    """Rows row0 + 4·i + (0 … rows - 1), i < n_y, and the same for columns, of t (H, W, C), as a view
    (n_y, rows, n_x, cols, C): 6×6 tiles or 4×4 blocks at stride 4, or parts of them."""
    sh, sw, sc = t.stride()
    return t.as_strided((n_y, rows, n_x, cols, t.shape[2]), (OUT * sh, sh, OUT * sw, sw, sc),
                        t.storage_offset() + row0 * sh + col0 * sw)


def _empty_like_layout(x: torch.Tensor, channels: int) -> torch.Tensor:
    """An uninitialised (1, channels, H, W) in x's memory format."""
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return torch.empty(1, channels, *x.shape[2:], dtype=x.dtype, memory_format=layout)


def _hwc(x: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) as an (H, W, C) view."""
    return x[0].permute(1, 2, 0)


def _block_regions(blocks: torch.Tensor, out: torch.Tensor, add: torch.Tensor | None):
    """Yield (blocks part, out view, add view) covering out (H, W, C) with the 4×4 blocks
    (tiles_y, 4, tiles_x, 4, C): the whole blocks, then the partial last row and column."""
    height, width, _ = out.shape
    full_y, full_x = height // OUT, width // OUT
    rows = [(0, full_y, OUT)] + ([(full_y, 1, height - OUT * full_y)] if height % OUT else [])
    cols = [(0, full_x, OUT)] + ([(full_x, 1, width - OUT * full_x)] if width % OUT else [])
    for ty, n_ty, n_i in rows:
        for tx, n_tx, n_j in cols:
            if n_ty == 0 or n_tx == 0:
                continue
            source = blocks[ty:ty + n_ty, :n_i, tx:tx + n_tx, :n_j]
            views = [None if t is None else _grid(t, n_ty, n_i, n_tx, n_j, OUT * ty, OUT * tx) for t in (out, add)]
            yield source, views[0], views[1]
