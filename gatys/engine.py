"""The transfer engine: the coarse-to-fine schedule, initialisation, callbacks and results.

    transfer = Transfer(TransferConfig(size=512))          # loads the network once
    result = transfer.run("content.jpg", "style.jpg")       # any number of runs after that
    result.to_pil().save("out.png")

A run goes scale by scale: resize the inputs, compute the targets once, initialise x
(from the previous scale's result, upsampled, after the first), optimise, keep the best
image. Callbacks get a Progress after every evaluation and read scalars only if they
print them, so the loop itself never waits on the device. On CUDA each scale's evaluation
is captured once as a CUDA graph and replayed (gatys/cuda_graph.py; config.cuda_graph).
"""
from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F
from PIL import Image

from . import colour, optimize
from .config import ADAIN_LAYER, TransferConfig, create_style_loss
from .cuda_graph import GraphedEvaluation, evaluate_eagerly
from .device import autocast, configure, device_name, resolve_device, resolve_precision
from .errors import GatysError
from .images import from_pil, load_image, resize, to_pil
from .norm import adain
from .objective import Objective, StyleTerm, divide_features
from .vgg import TORCHVISION_INDEX, VGGFeatures, load_vgg, min_side

ImageLike = Union[str, Path, Image.Image, torch.Tensor]
LOSS_PARTS = ("total", "content", "style", "tv")


@dataclass
class Progress:
    """What a callback sees after each evaluation. `losses` are device tensors: .item() syncs."""

    scale: int            # 0-based index of the current scale
    scales: int
    shape: tuple[int, int]
    iteration: int        # 1-based evaluations done at this scale
    iterations: int
    done: int             # evaluations done over all scales
    total: int            # evaluations planned over all scales
    losses: dict[str, torch.Tensor]  # rewritten by the next evaluation under a CUDA graph: read, don't keep
    image: torch.Tensor   # the image just evaluated (a live view: clone to keep it)
    elapsed: float


Callback = Callable[[Progress], None]


@dataclass
class Result:
    """A finished (or interrupted) run: the image, the loss trace, timings and what ran."""

    image: torch.Tensor   # (1, 3, H, W) float32 in [0, 1] on the CPU
    config: TransferConfig
    device: str
    precision: str
    weights: dict
    trace: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    interrupted: bool = False

    def to_pil(self) -> Image.Image:
        return to_pil(self.image)

    @property
    def final_losses(self) -> dict[str, float]:
        """The losses of the last evaluation of the last scale that ran."""
        if not self.trace or not self.trace[-1]["losses"]["total"]:
            return {}
        return {name: values[-1] for name, values in self.trace[-1]["losses"].items()}


def as_image(image: ImageLike) -> torch.Tensor:
    """A path, PIL image or tensor as a (1, 3, H, W) float32 tensor in [0, 1]."""
    if isinstance(image, (str, Path)):
        return load_image(image)
    if isinstance(image, Image.Image):
        return from_pil(image)
    if isinstance(image, torch.Tensor):
        tensor = image.unsqueeze(0) if image.dim() == 3 else image
        if tensor.dim() != 4 or tensor.shape[:2] != (1, 3):
            raise GatysError(f"an image tensor must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
        return tensor.detach().float().clamp(0, 1).contiguous()
    raise GatysError(f"cannot use a {type(image).__name__} as an image: give a path, a PIL image or a tensor")


def _digest(image: torch.Tensor) -> str:
    return hashlib.sha1(image.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


class Transfer:
    """Runs transfers with one config's defaults; holds networks and style features for reuse."""

    STYLE_CACHE_SIZE = 8

    def __init__(self, config: TransferConfig | None = None, **overrides):
        base = config or TransferConfig()
        self.config = base.replace(**overrides) if overrides else base
        self._networks: dict[tuple, VGGFeatures] = {}
        self._style_features: OrderedDict[tuple, dict] = OrderedDict()

    # -- pieces a study or gallery may reuse ------------------------------------------
    def network(self, config: TransferConfig, device: torch.device, precision: str = "fp32") -> VGGFeatures:
        """The VGG for config's weights and pooling on device, loaded once per process.

        For bf16 the convolutions' weights are stored in bf16 and the network runs in bf16
        after its float32 preprocessing; nothing is re-cast at every evaluation.
        """
        key = (config.weights, config.weights_convention, config.pooling, str(device), precision)
        if key not in self._networks:
            network = load_vgg(config.weights, config.pooling, config.weights_convention).to(device)
            if device.type in ("cuda", "cpu"):
                network = network.to(memory_format=torch.channels_last)
            if precision == "bf16":
                network.convs.to(torch.bfloat16)
            self._networks[key] = network
        return self._networks[key]

    def features(self, network: VGGFeatures, image: torch.Tensor, layers: Sequence[str],
                 precision: str) -> dict[str, torch.Tensor]:
        """Network features of a fixed image, computed without autograd."""
        device = next(network.parameters()).device
        with torch.inference_mode(), autocast(device, precision):
            feats = network(_to_device(image, device), layers)
        return {name: value.float().clone() for name, value in feats.items()}

    def style_features(self, network: VGGFeatures, image: torch.Tensor, layers: Sequence[str],
                       precision: str) -> dict[str, torch.Tensor]:
        """Like features(), cached by image content, size, layers and network (LRU)."""
        key = (id(network), _digest(image), tuple(image.shape), tuple(sorted(layers)), precision)
        if key in self._style_features:
            self._style_features.move_to_end(key)
            return self._style_features[key]
        feats = self.features(network, image, layers, precision)
        self._style_features[key] = feats
        while len(self._style_features) > self.STYLE_CACHE_SIZE:
            self._style_features.popitem(last=False)
        return feats

    # -- a run ------------------------------------------------------------------------
    def run(self, content: ImageLike, style: ImageLike | Sequence[ImageLike], *,
            callback: Callback | Sequence[Callback] | None = None, **overrides) -> Result:
        """Stylise content with one or more styles; overrides replace config fields for this run."""
        config, device, precision, network = self._setup(overrides)
        callbacks = [] if callback is None else [callback] if callable(callback) else list(callback)
        original_content, content_image, styles, blend, style_losses = _inputs(config, content, style)
        generator = torch.Generator().manual_seed(config.seed)

        sizes = config.scale_sizes()
        planned = sum(config.iterations_at(i) for i in range(len(sizes)))
        state = _RunState(device, planned, callbacks, time.perf_counter())
        x = None
        result_image = None
        interrupted = False
        try:
            for index, size in enumerate(sizes):
                if index:  # the first scale keeps each loss's own seed; later ones redraw
                    for loss in style_losses:
                        loss.resample(generator)
                objective, content_scaled = self._objective_at(size, config, network, precision, content_image,
                                                               styles, style_losses, blend)
                x = _initial_image(config, index, x, content_scaled, styles, objective.image_shape, generator, device)
                x = self._optimise(config, objective, x, index, len(sizes), state, style_losses, generator)
                result_image = x
        except KeyboardInterrupt:
            interrupted = True
            result_image = state.best_image()
            if result_image is None:
                result_image = x
        if result_image is None:
            result_image = resize(content_image, sizes[0])
        image = result_image.detach().float().clamp(0, 1).cpu().contiguous(memory_format=torch.contiguous_format)
        if config.preserve_colors == "luminance":
            image = colour.combine_luminance(image, resize(original_content, shape=tuple(image.shape[-2:])))
        return Result(
            image=image,
            config=config,
            device=f"{device} ({device_name(device)})",
            precision=precision,
            weights={"name": network.source.name, "path": network.source.path, "sha256": network.source.sha256,
                     "convention": network.source.convention, "pooling": network.pooling},
            trace=state.trace,
            timings=state.timings(),
            interrupted=interrupted,
        )

    def objective(self, content: ImageLike, style: ImageLike | Sequence[ImageLike], *, size: int | None = None,
                  **overrides) -> Objective:
        """The objective run() optimises at its last scale (or at longest side `size`).

        For studies: score any image with exactly the losses, targets and weights of a run.
        """
        config, _, precision, network = self._setup(overrides)
        _, content_image, styles, blend, style_losses = _inputs(config, content, style)
        size = size or config.scale_sizes()[-1]
        return self._objective_at(size, config, network, precision, content_image, styles, style_losses, blend)[0]

    def score(self, image: ImageLike, content: ImageLike, style: ImageLike | Sequence[ImageLike],
              **overrides) -> dict[str, float]:
        """The weighted losses (total, content, style, tv) of an image under the objective at its size."""
        picture = as_image(image)
        config = self.config.replace(**overrides) if overrides else self.config
        objective = self.objective(content, style, size=max(picture.shape[-2:]), **overrides)
        if config.preserve_colors == "luminance":
            picture = colour.grey_to_rgb(colour.luminance(picture))
        picture = resize(picture, shape=objective.image_shape)  # a no-op unless rounding differs
        with torch.no_grad():
            total, parts = objective(picture.to(objective.content_target.device))
        return {"total": total.item(), **{name: value.item() for name, value in parts.items()}}

    def _setup(self, overrides: dict) -> tuple[TransferConfig, torch.device, str, VGGFeatures]:
        config = self.config.replace(**overrides) if overrides else self.config
        device = resolve_device(config.device)
        precision = resolve_precision(config.precision, device)
        configure(device)
        return config, device, precision, self.network(config, device, precision)

    def _objective_at(self, size: int, config: TransferConfig, network: VGGFeatures, precision: str,
                      content: torch.Tensor, styles: list[torch.Tensor], style_losses: list,
                      blend: Sequence[float]) -> tuple[Objective, torch.Tensor]:
        """The objective at one scale (longest side `size`), and the content resized to it."""
        device = next(network.parameters()).device
        content_scaled = resize(content, size).to(device)
        style_size = max(1, round(size * config.style_scale))
        styles_scaled = [resize(style, style_size).to(device) for style in styles]
        objective = self._objective(config, network, precision, content_scaled, styles_scaled, style_losses, blend)
        return objective, content_scaled

    def _objective(self, config: TransferConfig, network: VGGFeatures, precision: str,
                   content: torch.Tensor, styles: list[torch.Tensor], style_losses: list,
                   blend: Sequence[float]) -> Objective:
        device = content.device
        style_layers = {layer for loss in style_losses for layer in (loss.layers or config.style_layers)}
        if config.content_target == "adain":
            content_layer = ADAIN_LAYER
            style_layers.add(ADAIN_LAYER)
        else:
            content_layer = config.content_layer
        _check_size("content", content, [content_layer, *style_layers])
        for style in styles:
            _check_size("style", style, style_layers)
        style_feats = [self.style_features(network, s, sorted(style_layers), precision) for s in styles]
        content_target = self.features(network, content, [content_layer], precision)[content_layer]
        if config.content_target == "adain":
            content_target = sum(w * adain(content_target, feats[ADAIN_LAYER]) for w, feats in zip(blend, style_feats))
        content_scale = _rms([content_target]) if config.normalize_layers else 1.0
        style_scales = {layer: (_rms([f[layer] for f in style_feats], blend) if config.normalize_layers
                                else 1.0) for layer in style_layers}
        style_feats = [{layer: divide_features(f[layer], style_scales[layer]) for layer in style_layers}
                       for f in style_feats]
        terms = [StyleTerm.build(loss, loss.layers or config.style_layers, style_feats, blend)
                 for loss in style_losses]

        def features(x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
            with autocast(device, precision):
                return network(x.contiguous(memory_format=_memory_format(device)), layers)

        return Objective(features, content_layer, content_target, terms, config.content_weight,
                         config.style_weight, config.tv_weight, content_scale=content_scale, style_scales=style_scales,
                         image_shape=tuple(content.shape[-2:]))

    def _optimise(self, config: TransferConfig, objective: Objective, x: torch.Tensor, index: int, scales: int,
                  state: "_RunState", style_losses: list, generator: torch.Generator) -> torch.Tensor:
        iterations = config.iterations_at(index)
        state.start_scale(x, iterations)
        x = x.detach().clone().contiguous().requires_grad_(True)  # optimizers need a flat-viewable x
        resample = config.resample and config.optimizer == "adam"

        graphed = (config.cuda_graph and x.device.type == "cuda" and not resample
                   and all(loss.capturable for loss in style_losses))
        evaluation = GraphedEvaluation(objective, x) if graphed else partial(evaluate_eagerly, objective, x)

        def evaluate() -> torch.Tensor:
            if resample and state.evaluations_at_scale:
                for loss in style_losses:
                    loss.resample(generator)
            total, parts = evaluation()
            state.record(x, total, parts, index, scales)
            return total

        optimize.run(config.optimizer, x, evaluate, iterations, config.learning_rate, best=state.best)
        state.end_scale()
        best = state.best_image()
        return (best if best is not None else x).detach()


def _check_size(what: str, image: torch.Tensor, layers: Sequence[str]) -> None:
    smallest = min_side(layers)
    if min(image.shape[-2:]) < smallest:
        height, width = image.shape[-2:]
        raise GatysError(f"the {what} image is {width}×{height} px at this scale, too small for layer "
                         f"{max(layers, key=TORCHVISION_INDEX.__getitem__)}: each side must be at least {smallest} px")


def _rms(feats: Sequence[torch.Tensor], weights: Sequence[float] = (1.0,)) -> float:
    """Root mean square activation over feature maps, each weighted (styles by their blend weight).

    A floor keeps an all-zero (dead) layer from dividing by zero.
    """
    return max(sum(w * f.float().square().mean().item() for f, w in zip(feats, weights)) ** 0.5, 1e-8)


def _memory_format(device: torch.device) -> torch.memory_format:
    return torch.channels_last if device.type in ("cuda", "cpu") else torch.contiguous_format


def _to_device(image: torch.Tensor, device: torch.device) -> torch.Tensor:
    return image.to(device).contiguous(memory_format=_memory_format(device))


class _RunState:
    """Loss trace, best image and timing of a run; the only state the evaluation closure touches."""

    def __init__(self, device: torch.device, planned: int, callbacks: list, started: float):
        self.device = device
        self.planned = planned
        self.callbacks = callbacks
        self.started = started
        self.trace: list[dict] = []
        self.done = 0
        self.best: torch.Tensor | None = None
        self.best_loss: torch.Tensor | None = None
        self.evaluations_at_scale = 0
        self._records: list[torch.Tensor] = []
        self._scale_started = started
        self._iterations = 0
        self._scale_seconds: list[float] = []

    def start_scale(self, x: torch.Tensor, iterations: int) -> None:
        self.best = x.detach().clone()
        self.best_loss = torch.full((), float("inf"), device=x.device)
        self.evaluations_at_scale = 0
        self._records = []
        self._iterations = iterations
        self._scale_started = time.perf_counter()
        self.trace.append({"shape": list(x.shape[-2:]), "iterations": iterations,
                           "losses": {name: [] for name in LOSS_PARTS}})

    def record(self, x: torch.Tensor, total: torch.Tensor, parts: dict, index: int, scales: int) -> None:
        # Best image without a host sync: select on the device.
        better = total < self.best_loss
        torch.where(better, x.detach(), self.best, out=self.best)  # in place: no image-sized temporary
        self.best_loss = torch.where(better, total, self.best_loss)
        losses = {"total": total, **parts}
        self._records.append(torch.stack([losses[name].float() for name in LOSS_PARTS]))
        self.evaluations_at_scale += 1
        self.done += 1
        if self.callbacks:
            progress = Progress(index, scales, tuple(x.shape[-2:]), self.evaluations_at_scale, self._iterations,
                                self.done, self.planned, losses, x.detach(), time.perf_counter() - self.started)
            for callback in self.callbacks:
                callback(progress)

    def best_image(self) -> torch.Tensor | None:
        return self.best if self.evaluations_at_scale else None

    def end_scale(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._scale_seconds.append(time.perf_counter() - self._scale_started)
        if self._records:
            values = torch.stack(self._records).cpu().tolist()
            for column, name in enumerate(LOSS_PARTS):
                self.trace[-1]["losses"][name] = [row[column] for row in values]

    def timings(self) -> dict:
        evaluations = [len(scale["losses"]["total"]) for scale in self.trace]
        return {
            "total_seconds": time.perf_counter() - self.started,
            "scale_seconds": self._scale_seconds,
            "evaluations": evaluations,
            "seconds_per_evaluation": [s / n if n else None for s, n in zip(self._scale_seconds, evaluations)],
        }


def _inputs(config: TransferConfig, content: ImageLike, style: ImageLike | Sequence[ImageLike]):
    """The images and losses of a run: (original content, content, styles, blend weights, style losses)."""
    original_content = as_image(content)
    styles = [as_image(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    if not styles:
        raise GatysError("at least one style image is needed")
    blend = config.blend_weights(len(styles))
    content_image, styles = _colour_inputs(config.preserve_colors, original_content, styles)
    style_losses = [create_style_loss(spec) for spec in config.style_losses]
    return original_content, content_image, styles, blend, style_losses


def _colour_inputs(mode: str, content: torch.Tensor, styles: list[torch.Tensor]):
    """Colour control before the transfer: luminance-only images, or styles matched to the content's colours."""
    if mode == "luminance":
        content_y = colour.luminance(content)
        styles = [colour.grey_to_rgb(colour.match_luminance(colour.luminance(s), content_y)) for s in styles]
        return colour.grey_to_rgb(content_y), styles
    if mode == "histogram":
        return content, [colour.match_histogram(s, content) for s in styles]
    return content, styles


def _initial_image(config: TransferConfig, index: int, previous: torch.Tensor | None, content: torch.Tensor,
                   styles: list[torch.Tensor], shape: tuple[int, int], generator: torch.Generator,
                   device: torch.device) -> torch.Tensor:
    """The first scale starts from config.init; later ones from the previous result, upsampled."""
    if previous is not None:
        return F.interpolate(previous, size=shape, mode="bicubic", align_corners=False).clamp(0, 1)
    if config.init == "content":
        return content.clone()
    if config.init == "noise":
        return torch.rand((1, 3, *shape), generator=generator).to(device)
    if config.init == "style":
        return resize(styles[0], shape=shape).to(device)
    image = as_image(config.init)
    if config.preserve_colors == "luminance":
        image = colour.grey_to_rgb(colour.luminance(image))
    return resize(image, shape=shape).to(device)
