"""The two frames a study runs in: each loss's run settings as engine settings.

gatys   the engine's objective: layer normalisation on, each loss at its default weight
        (a bare `mmd-gaussian` over GAUSSIAN_SAMPLES positions: exact is O(M²)).
li2017  the objective of Li et al.'s reference code (losses-spec.md §2.4), written as engine
        settings: layer normalisation off, one spec per style layer with that layer's factor,
        content Σ(F − P)² (weight N·M at the content layer), TV (t/16)·Σ_edges Δ² in 0–256 pixel
        units, the Gaussian kernel's linear-time estimator with the sampled pairs' bandwidth
        (`mmd-gaussian:sigma=li2017,estimator=linear`). Per layer, with M the output's positions,
        N its channels and γ the balance factor (5; 1 for BN, as run.sh):

            linear    γ·2e3 ·(M/2)·(1/N)·‖μ_F − μ_S‖²       = γ·1e3·M · mmd-linear
            poly      γ·0.1 ·(M/4)·(1/N²)·MMD²_poly          = γ·0.1·M · mmd-poly (and gram)
            Gaussian  γ·3e14·Σ_p h_p/(2NM)                   = γ·3e14·P/(2M) · mmd-gaussian
            BN        γ·1e3 ·(M/2)·L_BN                      = γ·500·M · moments

Where the frame cannot follow the reference code it says so in LI2017_DIFFERENCES.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import losses

from ..config import TransferConfig
from ..errors import GatysError
from ..images import scaled_size
from ..vgg import BLOCKS, LAYERS, TORCHVISION_INDEX

GAUSSIAN_SAMPLES = 4096
LI2017_BASE = {"gram": 0.1, "mmd-poly": 0.1, "mmd-linear": 2e3, "mmd-gaussian": 3e14, "moments": 1e3}
LI2017_BALANCE = {"moments": 1.0}  # run.sh: 1.0 for BN, 5 (the --style-weight default) for the kernels
LI2017_DEFAULT_BALANCE = 5.0
LI2017_TV_WEIGHT = 1e-2  # the reference code's --tv-weight
LI2017_LOSSES = tuple(LI2017_BASE)
LI2017_DIFFERENCES = (
    "the optimiser and budget are the study's, not SGD with momentum for up to 1000 steps",
    "the network is this study's VGG19 on 0–255 BGR inputs (MXNet's on 0–256 RGB) with its pooling "
    "(the reference code pools by average: add --pooling avg)",
    "the style image keeps its aspect ratio (the reference code resizes it to the content's H×W)",
    "the Gaussian kernel's pairs are drawn once per run from the seed (L-BFGS needs one objective), "
    "not at every step",
    "moments keeps eps = 1e-5 inside σ's square root (the reference has none; without it a dead "
    "channel's gradient is NaN)",
    "TV counts the interior edges with one weight for both directions (the reference also pulls "
    "the border towards the mean colour)",
)


@dataclass(frozen=True)
class Shapes:
    """The output's and the style's (H, W) at the study's (last) scale."""

    output: tuple[int, int]
    style: tuple[int, int]

    @classmethod
    def of(cls, content_size: tuple[int, int], style_size: tuple[int, int], config: TransferConfig) -> "Shapes":
        """From the images' (H, W) and the config's size and style scale, as the engine resizes them."""
        size = config.scale_sizes()[-1]
        return cls(scaled_size(*content_size, size), scaled_size(*style_size, max(1, round(size * config.style_scale))))

    def positions(self, layer: str, style: bool = False) -> int:
        """H_l·W_l: each pool before the layer halves both sides (rounding down)."""
        pools = sum(1 for name in LAYERS[: TORCHVISION_INDEX[layer]] if name.startswith("pool"))
        height, width = self.style if style else self.output
        return (height >> pools) * (width >> pools)


def channels(layer: str) -> int:
    """N_l of a VGG19 layer."""
    block = int(layer[len(layer.rstrip("0123456789_")):].split("_")[0])
    return BLOCKS[block - 1][0]


def frame_config(frame: str, config: TransferConfig, spec: str, shapes: Shapes,
                 given: frozenset[str] = frozenset()) -> TransferConfig:
    """The run settings of one loss in a frame; `given` names the transfer options the user set."""
    if frame == "gatys":
        return config.replace(style_losses=(gatys_spec(spec),))
    if len(config.scale_sizes()) > 1:
        raise GatysError("the li2017 frame runs at one scale: its per-layer factors depend on the image size")
    content_layer = config.content_layer
    content = channels(content_layer) * shapes.positions(content_layer)
    tv = config.tv_weight if "tv_weight" in given else LI2017_TV_WEIGHT
    return config.replace(style_losses=li2017_specs(spec, shapes, config.style_layers), normalize_layers=False,
                          content_weight=config.content_weight * content, tv_weight=li2017_tv_weight(tv, shapes))


def gatys_spec(spec: str) -> str:
    """The spec as run in the gatys frame: as given, but a bare mmd-gaussian samples positions."""
    if losses.parse_spec(spec) == ("mmd-gaussian", {}):
        return f"mmd-gaussian:samples={GAUSSIAN_SAMPLES}"
    return spec


def li2017_specs(spec: str, shapes: Shapes, default_layers: tuple[str, ...]) -> tuple[str, ...]:
    """One spec per style layer whose weight is that layer's factor in the reference code's objective."""
    name, params = losses.resolved(spec)
    given = losses.parse_spec(spec)[1]
    if name not in LI2017_BASE:
        raise GatysError(f"the li2017 frame has the reference code's weights for {', '.join(LI2017_LOSSES)} "
                         f"only, not {name}")
    fixed = {"weight"} | ({"sigma", "estimator", "samples"} if name == "mmd-gaussian" else set())
    if fixed & set(given):
        raise GatysError(f"the li2017 frame sets {', '.join(sorted(fixed & set(given)))} of {name} itself")
    if name == "mmd-poly" and params["d"] != 2:
        raise GatysError("the li2017 frame has mmd-poly with d = 2 only, as the reference code")
    layers = given.pop("layers", None) or default_layers
    layers = [layers] if isinstance(layers, str) else list(layers)
    if name == "mmd-gaussian":
        given.update(sigma="li2017", estimator="linear")
    return tuple(format_spec(name, {**given, "layers": layer, "weight": li2017_weight(name, layer, shapes)})
                 for layer in layers)


def li2017_weight(name: str, layer: str, shapes: Shapes) -> float:
    """The per-layer weight that turns the registered loss into the reference code's term (module doc)."""
    balance = LI2017_BALANCE.get(name, LI2017_DEFAULT_BALANCE) * LI2017_BASE[name]
    positions = shapes.positions(layer)
    if name in ("gram", "mmd-poly"):
        return balance * positions
    if name in ("mmd-linear", "moments"):
        return balance * positions / 2
    pairs = min(positions, shapes.positions(layer, style=True)) // 2  # mmd-gaussian
    return balance * pairs / (2 * positions)


def li2017_tv_weight(reference_weight: float, shapes: Shapes) -> float:
    """tv_weight making the engine's mean-based TV equal (t/16)·Σ_edges Δ² in 0–256 pixel units.

    The engine's TV is mean(Δx²) + mean(Δy²) over C·H·(W−1) and C·(H−1)·W differences: one
    weight serves both with the mean of the two counts (they differ by |H − W|·C).
    """
    height, width = shapes.output
    edges = 3 * (height * (width - 1) + (height - 1) * width) / 2
    return reference_weight / 16 * 256**2 * edges


def format_spec(name: str, params: dict[str, Any]) -> str:
    """A spec string that losses.parse_spec reads back to the same name and parameters."""
    if not params:
        return name
    return name + ":" + ",".join(f"{key}={_spec_value(value)}" for key, value in params.items())


def _spec_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(_spec_value(item) for item in value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def scaled_specs(specs: tuple[str, ...], factor: float) -> tuple[str, ...]:
    """Every spec with its weight (given, or the loss's default) multiplied by factor."""
    scaled = []
    for spec in specs:
        name, params = losses.parse_spec(spec)
        weight = params.get("weight", losses.resolved(spec)[1]["weight"])
        scaled.append(format_spec(name, {**params, "weight": float(weight) * factor}))
    return tuple(scaled)


def spec_weights(specs: tuple[str, ...]) -> list[float]:
    """The weight of each spec (given, or its loss's default)."""
    return [float(losses.resolved(spec)[1]["weight"]) for spec in specs]
