"""TransferConfig: every setting of a transfer, validated in one place, and TOML loading.

Fields mirror the CLI options one to one (`--content-weight` ↔ `content_weight`).
Validation raises GatysError with a message a user can act on.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import losses

from .errors import GatysError
from .vgg import CONVENTIONS, POOLINGS, check_layers

OPTIMIZERS = ("lbfgs", "adam", "lbfgsb")
INITS = ("content", "noise", "style")
PRESERVE_COLORS = ("none", "luminance", "histogram")
CONTENT_TARGETS = ("features", "adain")
PRECISIONS = ("auto", "fp32", "bf16")
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
ADAIN_LAYER = "relu4_1"


@dataclass(frozen=True)
class TransferConfig:
    """All settings of one transfer. `scales` (longest sides, coarse to fine) wins over `size`/`octaves`."""

    size: int = 512
    octaves: int = 1
    scales: tuple[int, ...] | None = None
    iterations: int | tuple[int, ...] = 500
    optimizer: str = "lbfgs"
    learning_rate: float | None = None
    style_losses: tuple[str, ...] = ("gram",)
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    style_weight: float = 1.0
    style_blend_weights: tuple[float, ...] | None = None
    style_scale: float = 1.0
    content_layer: str = "relu4_2"
    content_weight: float = 1.0
    content_target: str = "features"
    tv_weight: float = 1e-3
    normalize_layers: bool = True
    init: str = "content"
    seed: int = 0
    preserve_colors: str = "none"
    resample: bool = False
    weights: str = "caffe"
    weights_convention: str | None = None
    pooling: str = "max"
    device: str = "auto"
    precision: str = "auto"
    cuda_graph: bool = True  # on CUDA, replay each evaluation as one captured graph

    def __post_init__(self) -> None:
        # Normalise sequences given as lists or comma strings, then validate.
        for name in ("style_losses", "style_layers"):
            object.__setattr__(self, name, _str_tuple(getattr(self, name)))
        if self.scales is not None:
            object.__setattr__(self, "scales", tuple(int(s) for s in _str_tuple(self.scales)))
        if isinstance(self.iterations, (list, tuple, str)):
            counts = tuple(int(i) for i in _str_tuple(self.iterations))
            object.__setattr__(self, "iterations", counts[0] if len(counts) == 1 else counts)
        if self.style_blend_weights is not None:
            object.__setattr__(self, "style_blend_weights", tuple(float(w) for w in _str_tuple(self.style_blend_weights)))
        self.validate()

    # -- derived values --------------------------------------------------------------
    def scale_sizes(self) -> tuple[int, ...]:
        """Longest side at each scale, coarse to fine."""
        if self.scales:
            return self.scales
        return tuple(max(16, round(self.size / 2 ** (self.octaves - 1 - i))) for i in range(self.octaves))

    def iterations_at(self, scale_index: int) -> int:
        if isinstance(self.iterations, int):
            return self.iterations
        return self.iterations[min(scale_index, len(self.iterations) - 1)]

    def blend_weights(self, count: int) -> tuple[float, ...]:
        """Style blend weights normalised to sum to one (equal when not given)."""
        weights = self.style_blend_weights or (1.0,) * count
        if len(weights) != count:
            raise GatysError(f"{len(weights)} style blend weights for {count} style images")
        total = sum(weights)
        return tuple(w / total for w in weights)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "TransferConfig":
        return dataclasses.replace(self, **changes)

    # -- validation -------------------------------------------------------------------
    def validate(self) -> None:
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("preserve_colors", self.preserve_colors, PRESERVE_COLORS)
        _choice("content_target", self.content_target, CONTENT_TARGETS)
        _choice("pooling", self.pooling, POOLINGS)
        _choice("precision", self.precision, PRECISIONS)
        if self.weights_convention is not None:
            _choice("weights_convention", self.weights_convention, CONVENTIONS)
        if self.init not in INITS and not Path(self.init).expanduser().is_file():
            raise GatysError(f"init must be one of {', '.join(INITS)} or an image file; {self.init!r} is neither")
        for name in ("normalize_layers", "resample", "cuda_graph"):
            if not isinstance(getattr(self, name), bool):
                raise GatysError(f"{name.replace('_', '-')} must be true or false, got {getattr(self, name)!r}")
        _positive_int("size", self.size)
        _positive_int("octaves", self.octaves)
        for size in self.scales or ():
            _positive_int("scales", size)
        for count in (self.iterations,) if isinstance(self.iterations, int) else self.iterations:
            if not isinstance(count, int) or count < 0:
                raise GatysError(f"iterations must be whole numbers ≥ 0, got {count!r}")
        for name in ("style_weight", "content_weight", "tv_weight", "style_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise GatysError(f"{name.replace('_', '-')} must be a finite number ≥ 0, got {value!r}")
        if self.style_scale <= 0:
            raise GatysError("style-scale must be > 0")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise GatysError(f"learning-rate must be > 0, got {self.learning_rate!r}")
        if any(not (w >= 0) for w in self.style_blend_weights or ()) or (
            self.style_blend_weights and sum(self.style_blend_weights) <= 0
        ):
            raise GatysError("style blend weights must be ≥ 0 and not all zero")
        check_layers(self.style_layers)
        check_layers([self.content_layer])
        if not self.style_losses:
            raise GatysError("at least one style loss is needed")
        for spec in self.style_losses:
            create_style_loss(spec)


def create_style_loss(spec: str) -> losses.StyleLoss:
    """losses.create with a user-facing error, and its layers (if any) checked."""
    try:
        loss = losses.create(spec)
    except (ValueError, TypeError) as error:
        raise GatysError(f"style loss {spec!r}: {error}") from None
    if loss.layers is not None:
        check_layers(loss.layers)
    return loss


def _str_tuple(value: Any) -> tuple:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(value)


def _choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise GatysError(f"{name.replace('_', '-')} must be one of {', '.join(choices)}, not {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GatysError(f"{name} must be a whole number ≥ 1, got {value!r}")


FIELDS = {f.name for f in dataclasses.fields(TransferConfig)}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file (keys as in the CLI, dashes or underscores); unknown keys are errors."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise GatysError(f"cannot read config {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise GatysError(f"config {path} is not valid TOML: {error}") from None
    return {key.replace("-", "_"): value for key, value in data.items()}
