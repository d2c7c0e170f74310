"""The transfer engine: the coarse-to-fine schedule, initialisation, callbacks and results.

    transfer = Transfer(TransferConfig(size=512))          # loads the network once
    result = transfer.run("content.jpg", "style.jpg")       # any number of runs after that
    result.to_pil().save("out.png")

A run goes scale by scale: build the scale's objective (gatys/targets.py), initialise x
(from the previous scale's result, upsampled, after the first), optimise, keep the best
image. Callbacks get a Progress after every evaluation and read scalars only if they
print them, so the loop itself never waits on the device. Every random choice (noise
init, sampling losses) comes from the run's seed, or from a loss's own `seed=`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

import losses

from . import colour, optimize
from .config import TransferConfig, create_style_loss
from .cuda_graph import evaluation_for
from .device import configure, device_name, resolve_device, resolve_precision
from .errors import GatysError
from .images import ImageLike, as_image, resize, to_pil
from .network_cache import NetworkCache
from .objective import Objective
from .targets import objective_at
from .vgg import VGGFeatures

LOSS_PARTS = ("total", "content", "style", "tv")
LOSS_STREAM = 0x5EED  # the losses' random choices come from seed ^ this, the noise init from the seed itself


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
    stopped: str | None = None  # why the run ended before its budget (a non-finite objective it could not leave)

    def to_pil(self) -> Image.Image:
        return to_pil(self.image)

    @property
    def final_losses(self) -> dict[str, float]:
        """The losses of the last evaluation of the last scale that ran."""
        if not self.trace or not self.trace[-1]["losses"]["total"]:
            return {}
        return {name: values[-1] for name, values in self.trace[-1]["losses"].items()}


class Transfer:
    """Runs transfers with one config's defaults; holds networks and style features for reuse."""

    def __init__(self, config: TransferConfig | None = None, **overrides):
        base = config or TransferConfig()
        self.config = base.replace(**overrides) if overrides else base
        self.cache = NetworkCache()

    def network(self, config: TransferConfig, device: torch.device, precision: str = "fp32") -> VGGFeatures:
        """The VGG for config's weights and pooling on device, loaded once per process."""
        return self.cache.network(config.weights, config.weights_convention, config.pooling, device, precision)

    # -- a run ------------------------------------------------------------------------
    def run(self, content: ImageLike, style: ImageLike | Sequence[ImageLike], *, config: TransferConfig | None = None,
            callback: Callback | Sequence[Callback] | None = None, **overrides) -> Result:
        """Stylise content with one or more styles, under `config` (default: this Transfer's) and overrides."""
        config, device, precision, network = self._setup(config, overrides)
        original_content, content_image, styles, blend = _inputs(config, content, style)
        seeded, generator = _seeded_losses(config)
        style_losses = [loss for loss, _ in seeded]
        sizes = config.scale_sizes()
        state = _RunState(device, sum(config.iterations_at(i) for i in range(len(sizes))), _callbacks(callback))
        x = None
        try:
            for index, size in enumerate(sizes):
                if index:
                    _resample(seeded)
                objective, content_scaled = objective_at(self.cache, size, config, network, precision, content_image,
                                                         styles, style_losses, blend)
                x = _initial_image(config, x, content_scaled, styles, objective.image_shape, generator, device)
                x = _optimise(config, objective, x, index, len(sizes), state, seeded)
        except KeyboardInterrupt:
            x = state.stop("interrupted", x)
        except FloatingPointError as error:
            x = state.stop("non-finite", x, f"{error}; kept the best image before it")
        image = x if x is not None else resize(content_image, sizes[0])
        return self._result(config, network, device, precision, original_content, image, state)

    def objective(self, content: ImageLike, style: ImageLike | Sequence[ImageLike], *, size: int | None = None,
                  config: TransferConfig | None = None, **overrides) -> Objective:
        """The objective run() optimises at its last scale (or at longest side `size`), random choices included.

        For studies: score any image with exactly the losses, targets and weights of a run.
        """
        config, _, precision, network = self._setup(config, overrides)
        _, content_image, styles, blend = _inputs(config, content, style)
        seeded, _ = _seeded_losses(config)
        for _ in config.scale_sizes()[1:]:  # the choices run() makes for its last scale
            _resample(seeded)
        size = size or config.scale_sizes()[-1]
        style_losses = [loss for loss, _ in seeded]
        return objective_at(self.cache, size, config, network, precision, content_image, styles, style_losses,
                            blend)[0]

    def score(self, image: ImageLike, content: ImageLike, style: ImageLike | Sequence[ImageLike], *,
              config: TransferConfig | None = None, **overrides) -> dict[str, float]:
        """The weighted losses (total, content, style, tv) of an image under the objective at its size."""
        picture = as_image(image)
        config = (config or self.config).replace(**overrides)
        objective = self.objective(content, style, size=max(picture.shape[-2:]), config=config)
        if config.preserve_colors == "luminance":
            picture = colour.grey_to_rgb(colour.luminance(picture))
        picture = resize(picture, shape=objective.image_shape)  # a no-op unless rounding differs
        with torch.no_grad():
            total, parts = objective(picture.to(objective.content_target.device))
        return {"total": total.item(), **{name: value.item() for name, value in parts.items()}}

    def _setup(self, config: TransferConfig | None, overrides: dict
               ) -> tuple[TransferConfig, torch.device, str, VGGFeatures]:
        config = config or self.config
        config = config.replace(**overrides) if overrides else config
        device = resolve_device(config.device)
        precision = resolve_precision(config.precision, device)
        configure(device)
        return config, device, precision, self.network(config, device, precision)

    def _result(self, config: TransferConfig, network: VGGFeatures, device: torch.device, precision: str,
                original_content: torch.Tensor, image: torch.Tensor, state: "_RunState") -> Result:
        image = image.detach().float().clamp(0, 1).cpu().contiguous(memory_format=torch.contiguous_format)
        if config.preserve_colors == "luminance":
            image = colour.combine_luminance(image, resize(original_content, shape=tuple(image.shape[-2:])))
        source = network.source
        return Result(image=image, config=config, device=f"{device} ({device_name(device)})", precision=precision,
                      weights={"name": source.name, "path": source.path, "sha256": source.sha256,
                               "convention": source.convention, "pooling": network.pooling},
                      trace=state.trace, timings=state.timings(), interrupted=state.interrupted,
                      stopped=state.stopped)


def _callbacks(callback: Callback | Sequence[Callback] | None) -> list[Callback]:
    return [] if callback is None else [callback] if callable(callback) else list(callback)


def _seeded_losses(config: TransferConfig) -> tuple[list[tuple[losses.StyleLoss, torch.Generator]], torch.Generator]:
    """Each style loss with the generator of its random choices, and the run's generator.

    A loss whose spec gives `seed=` keeps that seed at the first scale and draws later ones
    from a generator of its own; every other loss draws its first choices from a stream of
    the run's seed too, so two seeds differ from the first evaluation on. The noise init has
    a stream of its own, so the losses' choices at a scale do not depend on the init.
    """
    loss_stream = torch.Generator().manual_seed(config.seed ^ LOSS_STREAM)
    seeded = []
    for spec in config.style_losses:
        loss = create_style_loss(spec)
        own_seed = losses.parse_spec(spec)[1].get("seed")
        if own_seed is None:
            loss.resample(loss_stream)
            seeded.append((loss, loss_stream))
        else:
            seeded.append((loss, torch.Generator().manual_seed(int(own_seed))))
    return seeded, torch.Generator().manual_seed(config.seed)


def _resample(seeded: Sequence[tuple[losses.StyleLoss, torch.Generator]]) -> None:
    for loss, generator in seeded:
        loss.resample(generator)


def _optimise(config: TransferConfig, objective: Objective, x: torch.Tensor, index: int, scales: int,
              state: "_RunState", seeded: Sequence[tuple[losses.StyleLoss, torch.Generator]]) -> torch.Tensor:
    """One scale's optimisation from x; returns the best image it saw."""
    iterations = config.iterations_at(index)
    state.start_scale(x, iterations)
    x = x.detach().clone().contiguous().requires_grad_(True)  # optimizers need a flat-viewable x
    resample = config.resample and config.optimizer == "adam"
    capturable = not resample and all(loss.capturable for loss, _ in seeded)
    evaluation = evaluation_for(objective, x, config.cuda_graph, capturable)

    def evaluate() -> torch.Tensor:
        if resample and state.evaluations_at_scale:
            _resample(seeded)
        total, parts = evaluation()
        state.record(x, total, parts, index, scales)
        return total

    converged = state.converged_by(config.tolerance) if config.tolerance else None
    state.stopped_because = optimize.run(config.optimizer, x, evaluate, iterations, config.learning_rate,
                                         best=state.best, converged=converged)
    state.end_scale()
    best = state.best_image()
    return (best if best is not None else x).detach()


class _RunState:
    """Loss trace, best image and timing of a run; the only state the evaluation closure touches."""

    def __init__(self, device: torch.device, planned: int, callbacks: list):
        self.device = device
        self.planned = planned
        self.callbacks = callbacks
        self.started = time.perf_counter()
        self.interrupted = False
        self.stopped: str | None = None
        self.stopped_because = "budget"  # why the current scale ended: budget, converged, interrupted, non-finite
        self._non_finite: torch.Tensor | None = None
        self._scale_open = False
        self.trace: list[dict] = []
        self.done = 0
        self.best: torch.Tensor | None = None
        self.best_loss: torch.Tensor | None = None
        self.evaluations_at_scale = 0
        self._records: list[torch.Tensor] = []
        self._scale_started = self.started
        self._iterations = 0
        self._scale_seconds: list[float] = []

    def start_scale(self, x: torch.Tensor, iterations: int) -> None:
        self.best = x.detach().clone()
        self.best_loss = torch.full((), float("inf"), device=x.device)
        self.evaluations_at_scale = 0
        self._records = []
        self._iterations = iterations
        self._scale_started = time.perf_counter()
        self._non_finite = torch.zeros((), dtype=torch.long, device=x.device)
        self._scale_open = True
        self.stopped_because = "interrupted"
        self.trace.append({"shape": list(x.shape[-2:]), "iterations": iterations,
                           "losses": {name: [] for name in LOSS_PARTS}})

    def record(self, x: torch.Tensor, total: torch.Tensor, parts: dict, index: int, scales: int) -> None:
        # Best image without a host sync: select on the device.
        better = total < self.best_loss
        torch.where(better, x.detach(), self.best, out=self.best)  # in place: no image-sized temporary
        self.best_loss = torch.where(better, total, self.best_loss)
        self._non_finite += ~torch.isfinite(total)  # counted on the device, read once per scale
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

    def stop(self, reason: str, x: torch.Tensor | None, message: str | None = None) -> torch.Tensor | None:
        """End the run early (interrupted, or non-finite with a message); the image to keep."""
        self.stopped_because = reason
        self.end_scale()
        self.interrupted = reason == "interrupted"
        self.stopped = message
        best = self.best_image()
        return best if best is not None else x

    def end_scale(self) -> None:
        """Close the current scale (if one is open): its time, loss trace and non-finite evaluations."""
        if not self._scale_open:
            return
        self._scale_open = False
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._scale_seconds.append(time.perf_counter() - self._scale_started)
        if self._records:
            values = torch.stack(self._records).cpu().tolist()
            for column, name in enumerate(LOSS_PARTS):
                self.trace[-1]["losses"][name] = [row[column] for row in values]
        self.trace[-1]["non_finite_evaluations"] = int(self._non_finite)
        self.trace[-1]["stopped_because"] = self.stopped_because

    def converged_by(self, tolerance: float) -> Callable[[], bool]:
        """A check that the best objective improved by less than `tolerance` (relative) since it last ran."""
        previous = [float("inf")]

        def converged() -> bool:
            current = float(self.best_loss)  # a read of the device, every optimize.GUARD_EVERY steps
            done = math.isfinite(previous[0]) and previous[0] - current <= tolerance * abs(previous[0])
            previous[0] = current
            return done

        return converged

    def timings(self) -> dict:
        evaluations = [len(scale["losses"]["total"]) for scale in self.trace]
        return {
            "total_seconds": time.perf_counter() - self.started,
            "scale_seconds": self._scale_seconds,
            "evaluations": evaluations,
            "seconds_per_evaluation": [s / n if n else None for s, n in zip(self._scale_seconds, evaluations)],
        }


def _inputs(config: TransferConfig, content: ImageLike, style: ImageLike | Sequence[ImageLike]):
    """The images of a run: (original content, content, styles, blend weights), colours handled."""
    original_content = as_image(content)
    styles = [as_image(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    if not styles:
        raise GatysError("at least one style image is needed")
    blend = config.blend_weights(len(styles))
    content_image, styles = _colour_inputs(config.preserve_colors, original_content, styles)
    return original_content, content_image, styles, blend


def _colour_inputs(mode: str, content: torch.Tensor, styles: list[torch.Tensor]):
    """Colour control before the transfer: luminance-only images, or styles matched to the content's colours."""
    if mode == "luminance":
        content_y = colour.luminance(content)
        styles = [colour.grey_to_rgb(colour.match_luminance(colour.luminance(s), content_y)) for s in styles]
        return colour.grey_to_rgb(content_y), styles
    if mode == "histogram":
        return content, [colour.match_histogram(s, content) for s in styles]
    return content, styles


def _initial_image(config: TransferConfig, previous: torch.Tensor | None, content: torch.Tensor,
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
