"""The transfer engine: the coarse-to-fine schedule, initialisation, callbacks and results.

    transfer = Transfer(TransferConfig(size=512))          # loads the network once
    result = transfer.run("content.jpg", "style.jpg")       # any number of runs after that
    result.to_pil().save("out.png")

A run goes scale by scale: build the scale's objective (gatys/targets.py), initialise x
(from the previous scale's result, upsampled, after the first), optimise, keep the best
image. Callbacks get a Progress after every evaluation and read scalars only if they
print them, so the loop itself never waits on the device. Every random choice (noise
init, sampling losses) comes from the run's seed, or from a loss's own `seed=`.
`Transfer.run_batch` runs several independent runs this way together, one network pass
for all at each evaluation (gatys/batch.py); `run` is a batch of one.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

import losses

from . import colour, optimize
from .batch import BATCHABLE_OPTIMIZERS, batch_key, evaluate_batch
from .config import TransferConfig, create_style_loss
from .fast.cuda_graph import evaluation_for
from .device import configure, device_name, resolve_device, resolve_precision
from .errors import GatysError
from .images import ImageLike, as_image, resize, scaled_size, to_pil
from .masks import RunMasks, run_masks
from .memory import available_bytes, parse_bytes, tile_shape
from .network_cache import NetworkCache
from .objective import Objective
from .run_state import Callback, Progress, RunState
from .targets import objective_at
from .tiling import TiledObjective, halo_for
from .vgg import TORCHVISION_INDEX, VGGFeatures

__all__ = ["Callback", "Progress", "Result", "Transfer"]
LOSS_STREAM = 0x5EED  # the losses' random choices come from seed ^ this, the noise init from the seed itself


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
        config = config or self.config
        return self.run_batch([(content, style, config.replace(**overrides) if overrides else config)], [callback])[0]

    def run_batch(self, runs: Sequence[tuple[ImageLike, ImageLike | Sequence[ImageLike], TransferConfig]],
                  callbacks: Sequence[Callback | Sequence[Callback] | None] | None = None) -> list[Result]:
        """Independent runs (content, style(s), config) optimised together: one network pass per evaluation.

        Each run keeps its own objective, random choices, optimizer history, budget and
        convergence, so its result is that of its run alone to rounding (gatys/batch.py). The
        runs must share `batch.batch_key` and their images one shape at every scale; a
        ValueError says which does not. Ctrl-C ends every run of the batch, keeping each best image.
        """
        if not runs:
            return []
        setups = [self._setup(config, {}) for _, _, config in runs]
        config, device, precision, network = setups[0]
        keys = {batch_key(setup[0]) for setup in setups}
        if len(runs) > 1 and (len(keys) != 1 or None in keys):
            raise ValueError("runs in one batch must share weights, pooling, device, precision, a batchable "
                             "optimizer and the scale schedule")
        callbacks = list(callbacks) if callbacks is not None else [None] * len(runs)
        members = [_Run(setup[0], content, style, device, callback)
                   for (content, style, _), setup, callback in zip(runs, setups, callbacks)]
        sizes = config.scale_sizes()
        try:
            for index, size in enumerate(sizes):
                live = [member for member in members if not member.ended]
                for member in live:
                    member.prepare_scale(self.cache, index, size, network, precision)
                if len({member.objective.image_shape for member in live}) > 1:
                    raise ValueError("runs in one batch must have content images of one shape at every scale")
                if live:
                    _optimise(live, index, len(sizes))
        except KeyboardInterrupt:
            for member in members:
                if not member.ended:
                    member.x = member.state.stop("interrupted", member.x)
        return [self._result(member.config, network, device, precision, member.original_content,
                             member.x if member.x is not None else resize(member.content, sizes[0]), member.state)
                for member in members]

    def objective(self, content: ImageLike, style: ImageLike | Sequence[ImageLike], *, size: int | None = None,
                  config: TransferConfig | None = None, **overrides) -> Objective:
        """The objective run() optimises at its last scale (or at longest side `size`), random choices included.

        For studies: score any image with exactly the losses, targets and weights of a run.
        """
        config, _, precision, network = self._setup(config, overrides)
        _, content_image, styles, blend = _inputs(config, content, style)
        masks = _masks(config, content_image, styles)
        seeded, _ = _seeded_losses(config)
        for _ in config.scale_sizes()[1:]:  # the choices run() makes for its last scale
            _resample(seeded)
        size = size or config.scale_sizes()[-1]
        style_losses = [loss for loss, _ in seeded]
        return objective_at(self.cache, size, config, network, precision, content_image, styles, style_losses,
                            blend, masks)[0]

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
                original_content: torch.Tensor, image: torch.Tensor, state: RunState) -> Result:
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


class _Run:
    """One run of a batch: its inputs, random choices, bookkeeping, and at each scale its objective and x."""

    def __init__(self, config: TransferConfig, content: ImageLike, style: ImageLike | Sequence[ImageLike],
                 device: torch.device, callback: Callback | Sequence[Callback] | None):
        self.config = config
        self.device = device
        self.original_content, self.content, self.styles, self.blend = _inputs(config, content, style)
        self.masks = _masks(config, self.content, self.styles)
        self.seeded, self.generator = _seeded_losses(config)
        sizes = config.scale_sizes()
        height, width = self.content.shape[-2:]
        plan = tuple((math.prod(scaled_size(height, width, size)), config.iterations_at(i))
                     for i, size in enumerate(sizes))
        self.state = RunState(device, sum(iterations for _, iterations in plan), _callbacks(callback), plan)
        self.x: torch.Tensor | None = None
        self.objective: Objective | None = None
        self.ended = False  # by a non-finite objective it could not leave: no further scales
        self.resample = config.resample and config.optimizer == "adam"

    def prepare_scale(self, cache: NetworkCache, index: int, size: int, network: VGGFeatures, precision: str) -> None:
        """The scale's objective (random choices redrawn after the first) and the x it starts from."""
        if index:
            _resample(self.seeded)
        style_losses = [loss for loss, _ in self.seeded]
        self.objective, content_scaled = objective_at(cache, size, self.config, network, precision, self.content,
                                                      self.styles, style_losses, self.blend, self.masks)
        shape = _tiles_needed(self.config, self.objective, index, self.device)
        if shape is not None:
            self.objective = TiledObjective(self.objective, shape)
        self.x = _initial_image(self.config, self.x, content_scaled, self.styles, self.objective.image_shape,
                                self.generator, self.device)

    def start_scale(self, index: int) -> optimize.Member | None:
        """x as a fresh leaf, the scale opened in the state; the optimizer's member (None for lbfgsb)."""
        config, state = self.config, self.state
        iterations = config.iterations_at(index)
        state.start_scale(self.x, iterations)
        if isinstance(self.objective, TiledObjective):
            state.trace[-1]["tiling"] = self.objective.describe()
        self.x = self.x.detach().clone().contiguous().requires_grad_(True)  # optimizers need a flat-viewable x
        if config.optimizer not in BATCHABLE_OPTIMIZERS:
            return None
        converged = state.converged_by(config.tolerance) if config.tolerance else None
        stepper = optimize.stepper(config.optimizer, self.x, iterations, config.learning_rate, state.best)
        return optimize.Member(stepper, iterations, has_fallback=True, converged=converged)

    def before_evaluation(self) -> None:
        if self.resample and self.state.evaluations_at_scale:
            _resample(self.seeded)

    def end_scale(self, stopped: str, error: FloatingPointError | None = None) -> None:
        """Close the scale; x becomes the best image it saw. A failure ends the run here."""
        state = self.state
        if error is not None:
            self.x = state.stop("non-finite", self.x, f"{error}; kept the best image before it")
            self.ended = True
            return
        state.stopped_because = stopped
        state.end_scale()
        best = state.best_image()
        self.x = (best if best is not None else self.x).detach()


def _optimise(runs: list[_Run], index: int, scales: int) -> None:
    """One scale's optimisation of every run from its x, together; each ends at its best image."""
    members = [run.start_scale(index) for run in runs]
    if len(runs) == 1:
        (run,) = runs
        capturable = not run.resample and run.masks is None and all(loss.capturable for loss, _ in run.seeded)
        if isinstance(run.objective, TiledObjective):
            evaluations = [functools.partial(run.objective.evaluate, run.x)]
        else:
            evaluations = [evaluation_for(run.objective, run.x, run.config.cuda_graph, capturable)]
    elif any(isinstance(run.objective, TiledObjective) for run in runs):
        raise ValueError("a picture evaluated in tiles runs alone, not in a batch")
    else:
        evaluations = None
    owner = {id(member): run for member, run in zip(members, runs)}

    def evaluate(active: list) -> list[torch.Tensor]:
        chosen = [owner[id(member)] for member in active]
        for run in chosen:
            run.before_evaluation()
        if evaluations is not None:
            results = [evaluations[0]()]
        else:
            results = evaluate_batch([run.objective for run in chosen], [run.x for run in chosen])
        for run, (total, parts) in zip(chosen, results):
            run.state.record(run.x, total, parts, index, scales)
        return [total for total, _ in results]

    if members[0] is None:  # lbfgsb: scipy drives its own loop, one run at a time
        (run,) = runs
        stopped = optimize.run(run.config.optimizer, run.x, lambda: evaluate([None])[0],
                               run.config.iterations_at(index))
        run.end_scale(stopped)
        return
    try:
        optimize.run_together(members, evaluate)
    except KeyboardInterrupt:
        for run in runs:
            run.x = run.x.detach()
        raise
    for run, member in zip(runs, members):
        run.end_scale(member.stopped, member.error)


def _inputs(config: TransferConfig, content: ImageLike, style: ImageLike | Sequence[ImageLike]):
    """The images of a run: (original content, content, styles, blend weights), colours handled."""
    original_content = as_image(content)
    styles = [as_image(s) for s in (style if isinstance(style, (list, tuple)) else [style])]
    if not styles:
        raise GatysError("at least one style image is needed")
    blend = config.blend_weights(len(styles))
    content_image, styles = _colour_inputs(config.preserve_colors, original_content, styles)
    return original_content, content_image, styles, blend


def _tiles_needed(config: TransferConfig, objective: Objective, index: int, device: torch.device
                  ) -> tuple[int, int] | None:
    """The tile shape a scale's evaluation needs to fit the memory budget (--max-memory, else the device's free
    memory), or None when it fits whole."""
    budget = parse_bytes(config.max_memory) if config.max_memory is not None else available_bytes(device)
    if budget is None:
        return None
    halo, grid = halo_for(objective.layers)
    deepest = max(objective.layers, key=TORCHVISION_INDEX.__getitem__)
    history = optimize.history_vectors(config.optimizer, config.iterations_at(index))
    return tile_shape(*objective.image_shape, deepest, history, budget, halo, grid)


def _masks(config: TransferConfig, content: torch.Tensor, styles: list[torch.Tensor]) -> RunMasks | None:
    """The config's masks, read and checked against the run's images (None without masks)."""
    return run_masks(config.masks, config.style_masks, config.mask_propagation, tuple(content.shape[-2:]),
                     [tuple(style.shape[-2:]) for style in styles])


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
    """The first scale starts from config.init; later ones from the previous result, upsampled, and with
    scale_init detail also the content's band finer than the previous scale (content − its round trip)."""
    if previous is not None:
        upsampled = F.interpolate(previous, size=shape, mode="bicubic", align_corners=False)
        if config.scale_init == "detail":
            coarse = resize(content, shape=tuple(previous.shape[-2:]))
            upsampled = upsampled + content - F.interpolate(coarse, size=shape, mode="bicubic", align_corners=False)
        return upsampled.clamp(0, 1)
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
