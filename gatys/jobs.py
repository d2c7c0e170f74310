"""Jobs and the result store: what turns a transfer into a finished, recorded result.

A Job is one transfer to run: the content, the style images (their blend weights are in
its config), the resolved TransferConfig and where the output goes. `Job.id` hashes what
changes the pixels (`Job.identity`), never paths. `run_job` writes the image atomically,
then the manifest atomically and last, with the image's SHA-256: a manifest beside the image
it names means the job finished, and nothing else does. gatys/store.py keeps results by id.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image

import losses

from . import manifest
from .batch import batch_key, chunks
from .claims import Claim
from .config import INITS, TransferConfig, create_style_loss, options
from .device import resolve_device, resolve_precision
from .engine import Callback, Result, Transfer
from .errors import GatysError
from .faults import fault_point
from .files import file_sha256
from .images import check_output_path, load_image, print_info, print_record, save_image_digested, scaled_size
from .masks import check_masks
from .memory import available_bytes, gib, parse_bytes, tile_shape, transfer_bytes
from .optimize import DEFAULT_LEARNING_RATE, history_vectors
from .targets import needed_layers
from .tiling import check_tileable, halo_for
from .vgg import TORCHVISION_INDEX, min_side, weights_convention, weights_file

# Raise this when an engine change makes the same identity give different pixels, so that
# results made before it no longer count as finished in a store; tests/test_golden.py fails
# until it is raised and the golden runs are written again (python -m tests.golden --write).
# 2: the seed streams of the sampling losses and of the noise init (2026-11), the coarse scales'
# style layers, style sizes, content weight and the start of later scales (issue 32), and the
# execution (device type, precision) in the id.
NUMERIC_CONTRACT = 2
ID_LENGTH = 20  # hex digits of the identity's SHA-256: 80 bits


@dataclass(frozen=True)
class Job:
    """One transfer: content and style files, the settings, and the output path (None until placed)."""

    content: Path
    styles: tuple[Path, ...]
    config: TransferConfig = field(default_factory=TransferConfig)
    output: Path | None = None

    def __post_init__(self) -> None:
        styles = [self.styles] if isinstance(self.styles, (str, Path)) else list(self.styles)
        if not styles:
            raise GatysError("a job needs at least one style image")
        check_masks(self.config.masks, self.config.style_masks, len(styles))
        object.__setattr__(self, "content", Path(self.content))
        object.__setattr__(self, "styles", tuple(Path(style) for style in styles))
        if self.output is not None:
            object.__setattr__(self, "output", Path(self.output))

    @property
    def inputs(self) -> tuple[Path, ...]:
        """Every file the job reads, the init image and masks included."""
        init = () if self.config.init in INITS else (Path(self.config.init),)
        masks = tuple(Path(path) for path in (*(self.config.masks or ()), *(self.config.style_masks or ())))
        return (self.content, *self.styles, *init, *masks)

    @functools.cached_property
    def identity(self) -> dict[str, Any]:
        """What the id hashes: everything that changes the pixels, and nothing else.

        The bytes of every input (SHA-256), the weights file's bytes and input convention, each
        pixel-affecting setting after defaults are resolved (the scale schedule as sizes and
        evaluations per scale, the learning rate, every loss's parameters, the blend weights
        normalised), the execution (`execution`: the device type and the precision `auto`
        resolves to, which change pixels beyond rounding), and NUMERIC_CONTRACT. Left out:
        paths, the CPU kernel class, thread count and GPU model, and CUDA-graph replay (another
        picture of the same quality, recorded in the manifest: docs/reliability.md), and the run
        options (quiet, save-every, manifest), which are not settings.
        """
        config = self.config
        blend = config.blend_weights(len(self.styles))
        return {
            "contract": NUMERIC_CONTRACT,
            "content": _input_sha256(self.content),
            "styles": [{"sha256": _input_sha256(path), "weight": weight} for path, weight in zip(self.styles, blend)],
            "weights": {"sha256": file_sha256(weights_file(config.weights)),
                        "convention": weights_convention(config.weights, config.weights_convention)},
            "settings": pixel_settings(config),
            "execution": execution(config),
        }

    @property
    def id(self) -> str:
        text = json.dumps(self.identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]

    def placed(self, output: str | Path) -> "Job":
        """The job writing to `output`, with the identity it was planned under (made on the planner's
        machine, it may name an execution that check_execution refuses here)."""
        moved = dataclasses.replace(self, output=Path(output))
        if "identity" in self.__dict__:
            moved.__dict__["identity"] = self.__dict__["identity"]
        return moved


def execution(config: TransferConfig) -> dict[str, str]:
    """The device type and the precision a job runs in here: `auto` resolved on this machine.

    bf16 and fp32 runs of one job end on different pictures (L-BFGS grows the rounding to
    percents of the objective), so they must not share an id; explicit settings are taken as
    given, so a job planned on a CPU head node for GPU workers names what the workers run.
    """
    try:
        kind = resolve_device(config.device).type if config.device == "auto" else torch.device(config.device).type
        precision = config.precision
        if precision == "auto":
            precision = resolve_precision("auto", resolve_device(config.device))
    except (GatysError, RuntimeError) as error:
        raise GatysError(f"cannot tell what precision auto means for device {config.device} on this machine "
                         f"({error}); give --precision fp32 or bf16") from None
    return {"device": kind, "precision": precision}


def pixel_settings(config: TransferConfig) -> dict[str, Any]:
    """The settings that change the pixels, with defaults resolved, as plain JSON values."""
    declared = options()
    settings = {name: _plain(getattr(config, name), option.kind)
                for name, option in declared.items() if option.pixels}
    sizes = config.scale_sizes()
    for name in ("size", "octaves", "style_blend_weights", "weights", "weights_convention"):
        del settings[name]  # held as the resolved schedule below, the inputs' weights and the weights file
    settings["scales"] = list(sizes)
    settings["iterations"] = [config.iterations_at(index) for index in range(len(sizes))]
    if config.learning_rate is None:
        settings["learning_rate"] = DEFAULT_LEARNING_RATE[config.optimizer]
    settings["style_losses"] = [_loss_identity(spec) for spec in config.style_losses]
    if config.init not in INITS:
        settings["init"] = {"image": _input_sha256(Path(config.init))}
    if config.masks is None:  # no spatial control: the ids of unmasked jobs stay what they were
        for name in ("masks", "style_masks", "mask_propagation"):
            del settings[name]
    else:
        for name in ("masks", "style_masks"):
            paths = getattr(config, name)
            settings[name] = None if paths is None else [_input_sha256(Path(path)) for path in paths]
    return settings


def _loss_identity(spec: str) -> dict[str, Any]:
    """A loss with every parameter resolved; a seed it was not given comes from the run's seed."""
    name, params = losses.resolved(spec)
    if "seed" in params and "seed" not in losses.parse_spec(spec)[1]:
        params["seed"] = "run"
    return {"name": name, **{key: _plain(value, "float") for key, value in params.items()}}


def _plain(value: Any, kind: str | None = None) -> Any:
    """JSON-stable values: tuples as lists, numbers of float settings as floats (2 and 2.0 are one id)."""
    if isinstance(value, (list, tuple)):
        return [_plain(item, "float" if kind in ("floats", "float") else None) for item in value]
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _input_sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except FileNotFoundError:
        raise GatysError(f"cannot read image {path}: no such file") from None
    except IsADirectoryError:
        raise GatysError(f"cannot read image {path}: it is a directory, not an image file") from None
    except OSError as error:
        raise GatysError(f"cannot read image {path}: {error.strerror or error}") from None


@dataclass
class Outcome:
    """How a job ended: done, interrupted, failed, skipped (a store already had it) or claimed (another
    process is running it: `error` says which; gatys/claims.py)."""

    job: Job
    status: str
    result: Result | None = None
    error: str | None = None  # one line, for a failed job
    exception: BaseException | None = field(default=None, repr=False)
    seconds: float = 0.0


def error_path(output: Path) -> Path:
    """out.png → out.error.json: the record a failed job leaves."""
    return output.with_suffix(".error.json")


def run_job(transfer: Transfer, job: Job, callbacks: Callback | Sequence[Callback] | None = None, *,
            write_manifest: bool = True, keep_interrupted: bool = True, record_errors: bool = True,
            bits: int = 8) -> Outcome:
    """Run one job: check the output path, load the inputs, run, write the image, then the manifest.

    The job's own failures (bad input, a fault during the run) come back as a failed Outcome,
    never raised, with an error record (message, traceback, settings) beside the output when
    `record_errors`. Ctrl-C during the optimisation ends it early: the best image so far is
    written with a manifest marked interrupted when `keep_interrupted`, and nothing otherwise.
    `bits` per channel of the image written: 8, or 16 for a .png or .tif output (for print; not
    in the id, since it quantises the same pixels more finely). The image carries the content's
    ICC profile and dpi (`images.print_info`), and the manifest says so under "print".
    """
    return run_jobs(transfer, [job], [callbacks], write_manifest=write_manifest, keep_interrupted=keep_interrupted,
                    record_errors=record_errors, bits=bits)[0]


def run_jobs(transfer: Transfer, jobs: Sequence[Job], callbacks: Sequence[Callback | Sequence[Callback] | None]
             | None = None, *, write_manifest: bool = True, keep_interrupted: bool = True,
             record_errors: bool = True, claims: Sequence[Claim | None] | None = None,
             bits: int = 8) -> list[Outcome]:
    """Run jobs as one batch (Transfer.run_batch: one network pass for all), as run_job runs one.

    Each job is checked and loaded on its own, and one that fails its checks fails alone; the
    others run together, so they must be able to share a batch (`batch.batch_key`, contents
    of one shape: `batchable` groups them). A fault of the batch run fails every job in it.
    A job whose claim (gatys/claims.py) was taken over while it ran writes nothing: claimed.
    """
    started = time.perf_counter()
    callbacks = list(callbacks) if callbacks is not None else [None] * len(jobs)
    claims = list(claims) if claims is not None else [None] * len(jobs)
    outcomes: dict[int, Outcome] = {}
    ready = []
    carried: dict[int, dict] = {}  # each content's ICC profile and dpi, read with it: the output gets them
    for index, job in enumerate(jobs):
        try:
            if job.output is None:
                raise GatysError("the job has no output path")
            output = check_output_path(job.output, job.inputs, bits=bits)
            content = load_image(job.content)
            carried[index] = print_info(job.content)
            styles = [load_image(path) for path in job.styles]
            check_fits(job, content, styles, batch=len(jobs))
            check_execution(job)
            ready.append((index, job, output, content, styles, job.id))
        except Exception as error:
            outcomes[index] = _failed(job, error, record_errors, started)
    try:
        results = _run(transfer, [(job, content, styles) for _, job, _, content, styles, _ in ready],
                       [callbacks[index] for index, *_ in ready]) if ready else []
    except Exception as error:
        results = [error] * len(ready)
    for (index, job, output, _, _, job_id), result in zip(ready, results):
        try:
            if isinstance(result, Exception):
                raise result
            if claims[index] is not None and not claims[index].held():
                outcomes[index] = Outcome(job, "claimed", error="another process took over its claim (this one "
                                          "seemed dead): its result was not written", seconds=time.perf_counter() - started)
                continue
            if keep_interrupted or not result.interrupted:
                _write_result(job, job_id, output, result, write_manifest, batch=len(ready), bits=bits,
                              carried=carried[index])
        except Exception as error:
            outcomes[index] = _failed(job, error, record_errors, started)
            continue
        status = "interrupted" if result.interrupted else "done"
        outcomes[index] = Outcome(job, status, result, seconds=time.perf_counter() - started)
    return [outcomes[index] for index in range(len(jobs))]


def check_execution(job: Job) -> None:
    """Refuse a job whose id was made on a machine where it would run in another precision or device."""
    here, named = execution(job.config), job.identity["execution"]
    if here != named:
        raise GatysError(f"job {job.id} names a {named['precision']} run on {named['device']}, and here it would run "
                         f"in {here['precision']} on {here['device']}; give --precision and --device explicitly "
                         "so every machine runs the same numbers")


def _failed(job: Job, error: Exception, record_errors: bool, started: float) -> Outcome:
    if record_errors and job.output is not None:
        _write_error_record(job, error)
    return Outcome(job, "failed", error=_one_line(error), exception=error, seconds=time.perf_counter() - started)


def batchable(jobs: Sequence[Job], size: int) -> list[list[Job]]:
    """Jobs in batches of at most `size` that can run together: one batch key and one content shape.

    Jobs keep their order within a group; a job that cannot be batched is a batch of its own.
    """
    groups: dict[Any, list[Job]] = {}
    for position, job in enumerate(jobs):
        key = batch_key(job.config)
        if key is not None and size > 1:
            key = (key, _image_size(job.content))
        groups.setdefault(key if key is not None and size > 1 else ("alone", position), []).append(job)
    return [chunk for group in groups.values() for chunk in chunks(group, size)]


def _image_size(path: Path) -> tuple[int, int] | None:
    """An image's (width, height) from its header, or None when it cannot be read (run_jobs says why)."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def check_fits(job: Job, content: torch.Tensor, styles: Sequence[torch.Tensor], batch: int = 1) -> None:
    """Refuse, naming the file, an image VGG cannot pool through the run's layers, and a size
    whose estimated memory (times `batch` images in one pass) is over what the device has free."""
    config = job.config
    content_layer, style_layers = needed_layers(config, [create_style_loss(spec) for spec in config.style_losses])
    first = config.scale_sizes()[0]
    checks = [(job.content, content, [content_layer, *style_layers], first)]
    checks += [(path, style, sorted(style_layers), max(1, round(first * config.style_scale)))
               for path, style in zip(job.styles, styles)]
    for path, image, layers, longest in checks:
        smallest = min_side(layers)
        height, width = image.shape[-2:]
        scaled_height, scaled_width = scaled_size(height, width, longest)
        if min(height, width, scaled_height, scaled_width) < smallest:
            deepest = max(layers, key=TORCHVISION_INDEX.__getitem__)
            at_scale = "" if min(height, width) < smallest else f", {scaled_width}×{scaled_height} at {longest} px"
            raise GatysError(f"image {path} is {width}×{height} px{at_scale}: too small for layer {deepest}, "
                             f"which needs each side to be at least {smallest} px")
    _check_memory(config, content, content_layer, style_layers, batch)


def _check_memory(config: TransferConfig, content: torch.Tensor, content_layer: str, style_layers: set,
                  batch: int = 1) -> None:
    """Refuse, before any work, a scale that cannot fit the memory budget (--max-memory, else the device's free
    memory) even in tiles, or that needs tiles a style loss cannot take; a batch must fit whole."""
    device = resolve_device(config.device)
    budget = parse_bytes(config.max_memory) if config.max_memory is not None else available_bytes(device)
    if budget is None:
        return
    layers = [content_layer, *style_layers]
    deepest = max(layers, key=TORCHVISION_INDEX.__getitem__)
    halo, grid = halo_for(layers)
    for index, size in enumerate(config.scale_sizes()):
        height, width = scaled_size(*content.shape[-2:], size)
        history = history_vectors(config.optimizer, config.iterations_at(index))
        if batch > 1:
            needed = batch * transfer_bytes(height, width, deepest, history)
            if needed > budget:
                raise GatysError(f"a batch of {batch} {width}×{height} px transfers needs about {gib(needed)} "
                                 f"(estimated) and the budget is {gib(budget)}; use a smaller --batch (a picture "
                                 "evaluated in tiles runs alone)")
        elif tile_shape(height, width, deepest, history, budget, halo, grid) is not None:
            check_tileable([create_style_loss(spec) for spec in config.style_losses])


def _run(transfer: Transfer, runs: Sequence[tuple[Job, torch.Tensor, Sequence[torch.Tensor]]],
         callbacks: Sequence[Callback | Sequence[Callback] | None]) -> list[Result]:
    """transfer.run_batch, with running out of GPU memory as a message that says what to try."""
    try:
        return transfer.run_batch([(content, list(styles), job.config) for job, content, styles in runs], callbacks)
    except torch.cuda.OutOfMemoryError as error:
        sizes = runs[0][0].config.scale_sizes()
        smaller = ",".join(str(max(16, size // 2)) for size in sizes)
        batch = f" (a batch of {len(runs)}: try a smaller --batch)" if len(runs) > 1 else ""
        raise GatysError(f"out of GPU memory in a transfer at {max(sizes)} px{batch} ({str(error).splitlines()[0][:120]}); "
                         f"try --scales {smaller}, --precision bf16, or another device with --device") from error


def _write_result(job: Job, job_id: str, output: Path, result: Result, write_manifest: bool, batch: int = 1,
                  bits: int = 8, carried: dict | None = None) -> None:
    """The image (`bits` per channel, with the content's profile and dpi `carried`), then the manifest."""
    carried = carried or {"icc_profile": None, "dpi": None}
    inputs = {"content": {"path": str(job.content), "sha256": job.identity["content"]},
              "styles": [{"path": str(path), "sha256": style["sha256"], "weight": style["weight"]}
                         for path, style in zip(job.styles, job.identity["styles"])]}
    run_manifest = manifest.build(result, inputs, output, job={"id": job_id, "identity": job.identity, "batch": batch})
    run_manifest["print"] = print_record(output, bits, **carried)
    manifest_file = manifest.manifest_path(output)
    manifest_file.unlink(missing_ok=True)  # an earlier run's manifest must not vouch for the new image
    digest = save_image_digested(result.image, output, metadata={
        "settings": run_manifest["settings"], "inputs": inputs, "weights": result.weights["name"],
        "gatys": run_manifest["gatys"], "job": job_id}, bits=bits, **carried)
    fault_point("after-image")
    if write_manifest:
        run_manifest["image"] = {"sha256": digest}
        manifest.write(run_manifest, manifest_file)
    error_path(output).unlink(missing_ok=True)


def _write_error_record(job: Job, error: Exception) -> None:
    try:
        job_id = job.id
    except GatysError:
        job_id = None  # an input that cannot be read cannot be hashed either
    record = {"job": job_id, "error": _one_line(error), "type": type(error).__name__,
              "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
              "content": str(job.content), "styles": [str(path) for path in job.styles],
              "settings": job.config.as_dict(), "time": datetime.now(timezone.utc).isoformat()}
    try:
        manifest.write(record, error_path(job.output))
    except GatysError:
        pass  # the output's folder is unwritable: the Outcome still carries the error


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    message = text[0] if text else ""
    return message if isinstance(error, GatysError) else f"{type(error).__name__}: {message}"
