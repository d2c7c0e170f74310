"""TransferConfig: every setting of a transfer, declared once, validated in one place.

Each field carries its default, its allowed values and its help (`setting(...)`); the
click options, the TOML keys, the `--help` defaults and the option table of docs/cli.md are
derived from or checked against these declarations. `settings_from` merges a TOML file
with command-line flags. Validation raises GatysError with a message a user can act on.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import losses

from .errors import GatysError
from .masks import PROPAGATIONS
from .memory import parse_bytes
from .vgg import CONVENTIONS, POOLINGS, check_layers, min_side

OPTIMIZERS = ("lbfgs", "adam", "lbfgsb")
INITS = ("content", "noise", "style")
PRESERVE_COLORS = ("none", "luminance", "histogram")
CONTENT_TARGETS = ("features", "adain")
STYLE_SIZES = ("final", "scale")  # the style at the last scale's size at every scale, or resized with each scale
SCALE_INITS = ("detail", "upsampled")  # a later scale starts from the previous result with or without the content's detail
PRECISIONS = ("auto", "fp32", "bf16")
COARSEST_SIZE = 128  # the automatic schedule starts no lower than about this longest side, doubling up to --size
AUTO_OCTAVES = 2     # ... and has at most this many scales: --size / 2, then --size (docs/quality.md)
COARSE_MIN_POSITIONS = 64  # a style layer joins a scale before the last only with this many positions along it
COARSE_CONTENT_WEIGHT = 4.0  # the content weight's multiplier at the scales before the last (docs/quality.md)
AUTO_ITERATIONS = (80, 150, 200)  # the finest scale's budget, then the next coarser one's, and every coarser one's
SINGLE_SCALE_ITERATIONS = 500
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
ADAIN_LAYER = "relu4_1"


@dataclass(frozen=True)
class Option:
    """How one setting appears to users: its flag, how it parses, its help and its shown default.

    `kind` says how a command-line value parses: int, float, str, ints / floats / strs
    (comma-separated lists), bool (an --x/--no-x pair) or multiple (a repeatable option).
    `shown` is the default as docs/cli.md's option table and `--help` print it.
    `pixels` is False for the settings that cannot change the output's pixels.
    """

    help: str
    kind: str
    shown: str
    choices: tuple[str, ...] | None = None
    flag: str | None = None
    pixels: bool = True

    def flag_for(self, name: str) -> str:
        return self.flag or name.replace("_", "-")


def setting(default: Any, help: str, kind: str, shown: str | None = None, **option: Any) -> Any:
    """A TransferConfig field with its user-facing declaration in the field's metadata."""
    if shown is None:
        text = f"{default:g}" if isinstance(default, float) else str(default)
        shown = f"`{text}`" if option.get("choices") or kind == "str" else text
    return field(default=default, metadata={"option": Option(help, kind, shown, **option)})


def options() -> dict[str, Option]:
    """Field name → Option, in declaration order."""
    return {f.name: f.metadata["option"] for f in dataclasses.fields(TransferConfig)}


@dataclass(frozen=True)
class TransferConfig:
    """All settings of one transfer. `scales` (longest sides, coarse to fine) wins over `size`/`octaves`."""

    size: int = setting(512, "Longest side of the output in pixels.", "int")
    octaves: int | None = setting(
        None, "Number of scales, each twice the last, ending at --size; auto: two (--size / 2, then --size) "
        "from 256 px up, one below.", "int", shown="auto")
    scales: tuple[int, ...] | None = setting(
        None, "Explicit coarse-to-fine sizes, e.g. 256,512,1024 (overrides --size and --octaves).", "ints", shown="–")
    iterations: int | tuple[int, ...] | None = setting(
        None, "Evaluations per scale (a ceiling: see --tolerance): one number, or one per scale; auto: "
        f"{', '.join(map(str, AUTO_ITERATIONS))} from the finest scale back (one scale: {SINGLE_SCALE_ITERATIONS}).",
        "ints", shown="auto")
    optimizer: str = setting("lbfgs", "Pixel optimiser.", "str", choices=OPTIMIZERS)
    tolerance: float = setting(
        2e-3, "A scale ends once its best objective improves by less than this fraction over 50 evaluations "
        "(0: always run every iteration).", "float")
    learning_rate: float | None = setting(
        None, "Step size (adam: in [0, 1] pixel units; lbfgs: a multiple of the L-BFGS direction).", "float",
        shown="adam 0.02, lbfgs 1")
    style_losses: tuple[str, ...] = setting(
        ("gram",), "Style loss spec, repeatable for fusion: gram, 'moments:weight=0.5', "
        "'mmd-gaussian:sigma=auto'. See `gatys losses`.", "multiple", shown="`gram`", flag="loss")
    style_layers: tuple[str, ...] = setting(
        DEFAULT_STYLE_LAYERS, "Layers every style loss uses unless its spec names its own.", "strs",
        shown=f"`{','.join(DEFAULT_STYLE_LAYERS)}`")
    style_weight: float = setting(1.0, "Global multiplier of all style losses.", "float")
    style_blend_weights: tuple[float, ...] | None = setting(
        None, "Weights of several style images, e.g. 0.7,0.3 (normalised to sum to 1).", "floats", shown="equal")
    masks: tuple[str, ...] | None = setting(
        None, "Spatial control: one content mask per style, in the order of the styles (greyscale images at the "
        "content's aspect ratio: white where that style goes, black where it does not, grey in between); where no "
        "mask covers the content only the content term acts (docs/masks.md).", "strs", shown="–")
    style_masks: tuple[str, ...] | None = setting(
        None, "With --masks: the region of each style image its style is taken from, one mask per style.", "strs",
        shown="–")
    mask_propagation: str = setting(
        "area", "How a mask reaches each layer's grid: area (averaged over each pooling window), all (positions "
        "whose receptive field touches the region) or inside (those whose receptive field lies in it).", "str",
        choices=PROPAGATIONS)
    style_scale: float = setting(1.0, "Style image size relative to the output size.", "float")
    style_size: str = setting(
        "scale", "Style image size at each scale: final (the last scale's size times --style-scale at every scale, "
        "so coarse scales match the style's statistics at the output's resolution) or scale (resized with each "
        "scale).", "str", choices=STYLE_SIZES)
    coarse_min_positions: int = setting(
        COARSE_MIN_POSITIONS, "At scales before the last, a style layer joins only if its feature map has at least this many "
        "positions along the image's longest side (deep layers with few positions let Gram matrices rebuild the "
        "style's objects, faces in the sky); 0: every layer at every scale.", "int")
    coarse_content_weight: float = setting(
        COARSE_CONTENT_WEIGHT, "At scales before the last, the content weight is multiplied by this: a coarse scale "
        "sees the content faint and small, and without it quiet regions (sky, water) take the style's objects; "
        "the last scale keeps --content-weight as given; 1: the same weight at every scale.", "float")
    scale_init: str = setting(
        "detail", "How a scale after the first starts: upsampled (the previous result, bicubic) or detail (that "
        "plus the content's detail finer than the previous scale could hold, so edges the coarse scale blurred "
        "are there from the first step).", "str", choices=SCALE_INITS)
    content_layer: str = setting("relu4_2", "Layer of the content loss.", "str")
    content_weight: float = setting(1.0, "Weight of the content loss.", "float")
    content_target: str = setting(
        "features", "features: match f(content); adain: match AdaIN(f(content), f(style)) at relu4_1.", "str",
        choices=CONTENT_TARGETS)
    tv_weight: float = setting(1e-3, "Total-variation smoothing weight.", "float")
    normalize_layers: bool = setting(
        True, "Divide each layer's features by the style's RMS activation.", "bool", shown="on")
    init: str = setting("content", "Start image: content, noise, style or an image path.", "str")
    seed: int = setting(0, "Seed of every random choice: noise init and sampling losses (a loss's own seed= wins).",
                        "int")
    preserve_colors: str = setting("none", "Keep the content's colours.", "str", choices=PRESERVE_COLORS)
    resample: bool = setting(False, "Adam only: redraw sampling losses' random choices every step.", "bool",
                             shown="off")
    weights: str = setting("caffe", "VGG19 weights: caffe, torchvision or a state-dict path.", "str")
    weights_convention: str | None = setting(
        None, "Input convention of a state-dict path.", "str", choices=CONVENTIONS, shown="`torchvision`")
    pooling: str = setting("max", "VGG pooling.", "str", choices=POOLINGS)
    device: str = setting("auto", "auto, cpu, cuda, cuda:N or mps.", "str", pixels=False)
    precision: str = setting("auto", "Network precision; auto picks bf16 where the hardware is fast at it.", "str",
                             choices=PRECISIONS)
    cuda_graph: bool = setting(True, "On CUDA, launch each evaluation as one captured graph.", "bool", shown="on",
                               pixels=False)
    max_memory: str | None = setting(
        None, "Memory budget of the whole process's peak, e.g. 8GiB, 2GB or 512MB: a scale whose evaluation would "
        "not fit is evaluated in tiles, with the exact objective (docs/print.md); auto: the device's free memory.",
        "str", shown="auto", pixels=False)

    def __post_init__(self) -> None:
        # Normalise sequences given as lists or comma strings (as TOML and Python callers do), then validate.
        for name in ("style_losses", "style_layers"):
            self._normalise(name, lambda value: _str_tuple(value, str))
        for name in ("masks", "style_masks"):
            if getattr(self, name) is not None:
                self._normalise(name, lambda value: _str_tuple(value, str))
        if self.scales is not None:
            self._normalise("scales", lambda value: _str_tuple(value, int))
        if self.iterations is not None and not _is_whole(self.iterations):
            self._normalise("iterations", lambda value: _single(_str_tuple(value, int)))
        if self.style_blend_weights is not None:
            self._normalise("style_blend_weights", lambda value: _str_tuple(value, float))
        self.validate()

    def _normalise(self, name: str, convert) -> None:
        value = getattr(self, name)
        try:
            object.__setattr__(self, name, convert(value))
        except (TypeError, ValueError):
            option = options()[name]
            raise GatysError(f"{option.flag_for(name)}: cannot read {value!r} as {_WORDS[option.kind]}") from None

    # -- derived values --------------------------------------------------------------
    def scale_sizes(self) -> tuple[int, ...]:
        """Longest side at each scale, coarse to fine: `scales`, or `octaves` scales doubling up to `size`."""
        if self.scales:
            return self.scales
        octaves = self.octaves or min(AUTO_OCTAVES, 1 + max(0, math.floor(math.log2(self.size / COARSEST_SIZE))))
        return tuple(max(16, round(self.size / 2 ** (octaves - 1 - i))) for i in range(octaves))

    def iterations_at(self, scale_index: int) -> int:
        """The evaluation budget of a scale; auto spends most where evaluations are cheap."""
        if isinstance(self.iterations, int):
            return self.iterations
        if self.iterations:
            return self.iterations[min(scale_index, len(self.iterations) - 1)]
        scales = len(self.scale_sizes())
        if scales == 1:
            return SINGLE_SCALE_ITERATIONS
        return AUTO_ITERATIONS[min(scales - 1 - scale_index, len(AUTO_ITERATIONS) - 1)]

    def style_size_at(self, size: int) -> int:
        """The style images' longest side at a scale of longest side `size` (style_size, style_scale)."""
        reference = self.scale_sizes()[-1] if self.style_size == "final" else size
        return max(1, round(reference * self.style_scale))

    def style_layers_at(self, size: int, layers: Sequence[str]) -> tuple[str, ...]:
        """The style layers used at a scale of longest side `size`: all at the last scale; before it, those
        with at least coarse_min_positions positions along the longest side (the shallowest one at least)."""
        layers = tuple(layers)
        if not self.coarse_min_positions or size >= self.scale_sizes()[-1]:
            return layers
        kept = tuple(layer for layer in layers if size // min_side([layer]) >= self.coarse_min_positions)
        return kept or (min(layers, key=min_side_of),)

    def content_weight_at(self, size: int) -> float:
        """The content weight at a scale of longest side `size`: coarse_content_weight times it before the last."""
        if size >= self.scale_sizes()[-1]:
            return self.content_weight
        return self.content_weight * self.coarse_content_weight

    def blend_weights(self, count: int) -> tuple[float, ...]:
        """Style blend weights normalised to sum to one (equal when not given).

        With masks each style has a region of its own, so the weights are taken as given (1 each when
        not given): every region is styled as fully as a one-style run styles the whole picture."""
        weights = self.style_blend_weights or (1.0,) * count
        if len(weights) != count:
            raise GatysError(f"{len(weights)} style blend weights for {count} style images")
        if self.masks is not None:
            return tuple(float(w) for w in weights)
        total = sum(weights)
        return tuple(w / total for w in weights)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "TransferConfig":
        return dataclasses.replace(self, **changes)

    # -- validation -------------------------------------------------------------------
    def validate(self) -> None:
        for name, option in options().items():
            _check_type(name, getattr(self, name), option.kind)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("preserve_colors", self.preserve_colors, PRESERVE_COLORS)
        _choice("content_target", self.content_target, CONTENT_TARGETS)
        _choice("style_size", self.style_size, STYLE_SIZES)
        _choice("scale_init", self.scale_init, SCALE_INITS)
        _choice("pooling", self.pooling, POOLINGS)
        _choice("precision", self.precision, PRECISIONS)
        if self.weights_convention is not None:
            _choice("weights_convention", self.weights_convention, CONVENTIONS)
        if self.init not in INITS and not Path(self.init).expanduser().is_file():
            raise GatysError(f"init must be one of {', '.join(INITS)} or an image file; {self.init!r} is neither")
        _choice("mask_propagation", self.mask_propagation, PROPAGATIONS)
        if self.max_memory is not None:
            parse_bytes(self.max_memory)
        for name in ("masks", "style_masks"):
            for path in getattr(self, name) or ():
                if not Path(path).expanduser().is_file():
                    raise GatysError(f"{name.replace('_', '-')}: {path} is not a file")
        if self.style_masks is not None and self.masks is None:
            raise GatysError("style-masks needs masks: the style masks say where in each style image its style is "
                             "taken from, the masks where in the content it goes")
        _positive_int("size", self.size)
        if self.octaves is not None:
            _positive_int("octaves", self.octaves)
        for size in self.scales or ():
            _positive_int("scales", size)
        for count in (self.iterations,) if isinstance(self.iterations, int) else self.iterations or ():
            if not isinstance(count, int) or count < 1:
                raise GatysError(f"iterations must be whole numbers ≥ 1, got {count!r}")
        if not _is_whole(self.coarse_min_positions) or self.coarse_min_positions < 0:
            raise GatysError(f"coarse-min-positions must be a whole number ≥ 0, got {self.coarse_min_positions!r}")
        for name in ("style_weight", "content_weight", "coarse_content_weight", "tv_weight", "style_scale", "tolerance"):
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


def min_side_of(layer: str) -> int:
    return min_side([layer])


def create_style_loss(spec: str) -> losses.StyleLoss:
    """losses.create with a user-facing error, and its layers (if any) checked."""
    try:
        loss = losses.create(spec)
    except (ValueError, TypeError) as error:
        raise GatysError(f"style loss {spec!r}: {error}") from None
    if loss.layers is not None:
        check_layers(loss.layers)
    return loss


def _str_tuple(value: Any, kind: type) -> tuple:
    """A comma-separated string or a sequence as a tuple of `kind`; bools are not numbers here."""
    parts = [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else list(value)
    if kind is not str and any(isinstance(part, bool) for part in parts):
        raise TypeError("booleans are not numbers")
    if kind is str and not all(isinstance(part, str) for part in parts):
        raise TypeError("expected strings")
    return tuple(kind(part) for part in parts)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _single(counts: tuple[int, ...]) -> int | tuple[int, ...]:
    return counts[0] if len(counts) == 1 else counts


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
_WORDS = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "true or false",
          "ints": "whole numbers", "floats": "numbers", "strs": "names", "multiple": "a list of strings"}


def _check_type(name: str, value: Any, kind: str) -> None:
    """Scalars of the declared kind (None where the default is None); lists are checked as they are read."""
    if value is None:
        if TransferConfig.__dataclass_fields__[name].default is not None:
            raise GatysError(f"{name.replace('_', '-')} needs a value")
        return
    if kind not in _TYPES:
        return
    if not isinstance(value, _TYPES[kind]) or (kind != "bool" and isinstance(value, bool)):
        raise GatysError(f"{name.replace('_', '-')} must be {_WORDS[kind]}, got {value!r}")


def _choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise GatysError(f"{name.replace('_', '-')} must be one of {', '.join(choices)}, not {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GatysError(f"{name} must be a whole number ≥ 1, got {value!r}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """The table of a TOML file, as read (keys as written)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise GatysError(f"cannot read config {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise GatysError(f"config {path} is not valid TOML: {error}") from None


@dataclass(frozen=True)
class RunOptions:
    """What a command reads and writes beside its TransferConfig; none of it changes the pixels."""

    content: str | None = None
    styles: tuple[str, ...] = ()
    output: str | None = None
    save_every: int = 0
    quiet: bool = False
    manifest: bool = True
    bit_depth: int = 8


RUN_KEYS = {"content": "content", "style": "styles", "output": "output", "save-every": "save_every",
            "quiet": "quiet", "manifest": "manifest", "bit-depth": "bit_depth"}  # TOML key → RunOptions field


def toml_keys() -> dict[str, str]:
    """TOML key → TransferConfig field: the option's flag without its dashes (`loss` for style_losses)."""
    return {option.flag_for(name): name for name, option in options().items()}


def settings_from(file_settings: Mapping[str, Any], flags: Mapping[str, Any],
                  source: str = "config") -> tuple[TransferConfig, RunOptions]:
    """Merge a config file's table with command-line flags (flags win) into a config and run options.

    `file_settings` uses TOML keys (`style-weight` or `style_weight`, `loss`, `style`); `flags`
    uses field names (`style_weight`, `style_losses`, `styles`) and leaves out what was not given.
    Unknown keys are errors that name the closest valid ones.
    """
    keys = {**toml_keys(), **RUN_KEYS}
    config_fields, run_fields = set(options()), {f.name for f in dataclasses.fields(RunOptions)}
    merged: dict[str, Any] = {}
    for key, value in file_settings.items():
        name = keys.get(str(key).replace("_", "-"))
        if name is None:
            close = difflib.get_close_matches(str(key).replace("_", "-"), keys, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; valid keys: {', '.join(sorted(keys))}"
            raise GatysError(f"{source}: unknown key {key!r}{hint}")
        merged[name] = value
    merged.update(flags)
    config = TransferConfig(**{name: value for name, value in merged.items() if name in config_fields})
    run = {name: value for name, value in merged.items() if name in run_fields}
    if isinstance(run.get("styles"), str):
        run["styles"] = [run["styles"]]
    return config, _run_options(run, source)


def _run_options(values: dict[str, Any], source: str) -> RunOptions:
    for name in ("content", "output"):
        if values.get(name) is not None and not isinstance(values[name], str):
            raise GatysError(f"{source}: {name} must be a path string, got {values[name]!r}")
    styles = values.get("styles", ())
    if not isinstance(styles, (list, tuple)) or not all(isinstance(path, str) for path in styles):
        raise GatysError(f"{source}: style must be a path or a list of paths, got {styles!r}")
    save_every = values.get("save_every") or 0
    if not isinstance(save_every, int) or isinstance(save_every, bool) or save_every < 0:
        raise GatysError(f"save-every must be a whole number ≥ 0, got {save_every!r}")
    for name in ("quiet", "manifest"):
        if name in values and not isinstance(values[name], bool):
            raise GatysError(f"{name} must be true or false, got {values[name]!r}")
    bit_depth = values.get("bit_depth") or 8
    if isinstance(bit_depth, bool) or bit_depth not in (8, 16):
        raise GatysError(f"bit-depth must be 8 or 16, got {values['bit_depth']!r}")
    return RunOptions(values.get("content"), tuple(styles), values.get("output"), save_every,
                      values.get("quiet", False), values.get("manifest", True), bit_depth)
