"""Instance normalisation, AdaIN and conditional instance normalisation (spec §8, §10).

    IN(x)      = (x − μ(x)) / σ(x)                        Ulyanov et al., arXiv 1607.08022
    AdaIN(x,y) = σ(y)·(x − μ(x))/σ(x) + μ(y)              Huang & Belongie, arXiv 1703.06868
    CIN(x; s)  = γ^s·(x − μ(x))/σ(x) + β^s               Dumoulin et al., arXiv 1610.07629

μ and σ are per image and channel over the H×W positions; σ(x) = sqrt(biased variance + eps).
Works on (B, C, H, W) tensors of any float dtype and depends on torch only.
"""
from __future__ import annotations

import torch
from torch import nn


def _check(x: torch.Tensor, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{what} must be a (B, C, H, W) tensor, got {shape}")


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """μ and the biased variance over H×W, shaped (B, C, 1, 1)."""
    var, mean = torch.var_mean(x, dim=(2, 3), unbiased=False, keepdim=True)
    return mean, var


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """IN(x) = (x − μ(x))/sqrt(σ²(x) + eps), per image and channel; eps 1e-5 as in Torch's IN.

    y_tijk = (x_tijk − μ_ti)/sqrt(σ²_ti + eps),  μ_ti = (1/HW)Σ_lm x_tilm,  σ²_ti = (1/HW)Σ_lm (x_tilm − μ_ti)²
    """
    _check(x, "x")
    mean, var = _moments(x)
    return (x - mean) / torch.sqrt(var + eps)


def adain(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """AdaIN(x, y) = σ(y)·(x − μ(x))/sqrt(σ²(x) + eps) + μ(y): x's channels take y's mean and std.

    As in the official code, eps enters only x's normalisation; y's σ is the biased std
    without eps, so with eps = 0 the output's channel means and stds equal y's exactly.
    y is (1 or B, C, H', W'); its size need not match x's.
    """
    _check(x, "content features x")
    _check(y, "style features y")
    if y.shape[1] != x.shape[1] or y.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"style features {tuple(y.shape)} do not fit content features {tuple(x.shape)}: "
                         f"need the same channels and a batch of 1 or {x.shape[0]}")
    style_mean, style_var = _moments(y)
    return torch.sqrt(style_var) * instance_norm(x, eps) + style_mean


class ConditionalInstanceNorm(nn.Module):
    """CIN(x; s) = γ^s·(x − μ(x))/sqrt(σ²(x) + eps) + β^s with one learned (γ, β) per style.

    forward(x, style): style is an int, a (B,) tensor of style indices, or mixture weights
    (num_styles,) or (B, num_styles), which blend (γ, β) linearly as in Dumoulin et al.'s
    style interpolation. γ starts at 1 and β at 0; eps is Magenta's 1e-5.
    """

    def __init__(self, num_styles: int, channels: int, eps: float = 1e-5):
        super().__init__()
        if num_styles < 1 or channels < 1:
            raise ValueError(f"num_styles and channels must be positive, got {num_styles} and {channels}")
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(num_styles, channels))
        self.shift = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, style: int | torch.Tensor) -> torch.Tensor:
        _check(x, "x")
        num_styles, channels = self.scale.shape
        if x.shape[1] != channels:
            raise ValueError(f"x has {x.shape[1]} channels, this layer normalises {channels}")
        style = torch.as_tensor(style, device=self.scale.device)
        if style.is_floating_point():
            if style.shape[-1] != num_styles or style.dim() > 2:
                raise ValueError(f"style weights must be (num_styles,) or (B, num_styles) with num_styles = "
                                 f"{num_styles}, got {tuple(style.shape)}")
            style = style.to(self.scale.dtype)
            scale, shift = style @ self.scale, style @ self.shift
        else:
            if style.dim() > 1 or ((style < 0) | (style >= num_styles)).any():
                raise ValueError(f"style must be an index or (B,) indices in [0, {num_styles}), got {style.tolist()}")
            scale, shift = self.scale[style], self.shift[style]
        scale = scale.reshape(-1, channels, 1, 1).to(x.dtype)
        shift = shift.reshape(-1, channels, 1, 1).to(x.dtype)
        return scale * instance_norm(x, self.eps) + shift

    def extra_repr(self) -> str:
        return f"num_styles={self.scale.shape[0]}, channels={self.scale.shape[1]}, eps={self.eps:g}"
