"""Galleries: many transfers from one spec, planned as jobs, run into a store, shown as contact sheets.

A gallery is the product contents × styles × losses × variants (or an explicit list of jobs),
each a `Job` with its stable id. `Gallery.plan(store)` says which are done, failed or missing
and how long the rest should take; `Gallery.run(directory)` runs what is missing (failed jobs
too with `retry_failed`) on the local backend (in this process on a CPU; one spawned process
per GPU) or on Ray (`gallery_ray.py`), each worker reusing one `Transfer`, then rebuilds the
contact sheets and index.html from the store. The store alone decides what is done, so a run
killed at any point loses no finished job, and a rerun does only what is left.

Every spec error (unknown option, missing file, a glob matching nothing, an empty axis, a bad
value) is a GatysError raised when the Gallery is built, before any work.
"""
from __future__ import annotations

import dataclasses
import difflib
import glob
import os
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from PIL import Image

from . import report
from .callbacks import GalleryProgress, format_seconds
from .config import RUN_KEYS, TransferConfig, load_toml, options, settings_from
from .errors import GatysError
from .images import scaled_size
from .jobs import Job, Outcome, Store

SPEC_KEYS = ("name", "contents", "styles", "losses", "defaults", "variants", "jobs")
BACKENDS = ("local", "ray")
THUMBNAIL = 256  # longest side of DIR/thumbs/<id>.png
SHEET_CELL = 160  # contact-sheet cell, pixels

# Rough cost of one evaluation where no finished job has been timed yet: seconds per output
# pixel and a fixed part, from docs/performance.md (float32 on a 2-core CPU; an H200).
ROUGH_SECONDS = {"cpu": (4e-6, 0.03), "cuda": (2e-8, 0.002), "mps": (4e-7, 0.01)}
ROUGH_JOB_SECONDS = 1.0  # reading inputs, style targets, writing the image and manifest


# ---------------------------------------------------------------------------- the spec

@dataclass(frozen=True)
class PlannedJob:
    """One job of a gallery with its labels; `status` (done, failed, missing) once planned."""

    job: Job
    content: str
    style: str
    loss: str
    variant: str
    status: str | None = None

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def group(self) -> tuple[str, str]:
        """(loss, variant): the jobs of one contact sheet."""
        return self.loss, self.variant

    def describe(self) -> str:
        extra = " · ".join(part for part in (self.loss, self.variant) if part)
        return f"{self.content} × {self.style}" + (f" · {extra}" if extra else "")


class Gallery:
    """A set of transfers: contents × styles × losses × variants, or explicit `jobs`.

    `contents` and `styles` are image paths or globs (relative to `root`); `losses` loss specs,
    each one job's `style_losses` (a list of specs fuses them); `defaults` transfer options as
    TOML keys (`style-weight`) or field names (`style_weight`); `variants` tables of options, each
    with an optional `name`, swept on top of the defaults; `jobs` instead of the axes, tables
    with `content`, `style` (one path or a list to blend), optional `loss`, `name` and options.
    """

    def __init__(self, contents: Sequence[str | os.PathLike] | str = (), styles: Sequence[str | os.PathLike] | str = (),
                 losses: Sequence[str | Sequence[str]] | None = None, defaults: Mapping[str, Any] | None = None,
                 variants: Sequence[Mapping[str, Any]] = (), jobs: Sequence[Mapping[str, Any]] = (), *,
                 root: str | os.PathLike = ".", name: str = "gallery", source: str = "gallery"):
        self.root = Path(root).expanduser().resolve()
        self.name = str(name)
        self.source = source
        self.defaults = _option_table(defaults or {}, f"{source} [defaults]")
        if jobs:
            if contents or styles or losses is not None or variants:
                raise GatysError(f"{source}: give either contents, styles, losses and variants, or a [[jobs]] list, "
                                 "not both")
            self.jobs = self._explicit_jobs(jobs)
            self.axes = None
        else:
            self.jobs = self._product_jobs(contents, styles, losses, variants)
        self.contents = _unique(job.content for job in self.jobs)
        self.styles = _unique(job.style for job in self.jobs)
        self.groups = _unique(job.group for job in self.jobs)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> "Gallery":
        """Read a gallery spec; paths in it are relative to its folder."""
        path = Path(path)
        spec = load_toml(path)
        unknown = [key for key in spec if key not in SPEC_KEYS]
        if unknown:
            key = unknown[0]
            hint = ("; transfer options go under [defaults]" if str(key).replace("_", "-") in _option_keys()
                    else _did_you_mean(key, SPEC_KEYS))
            raise GatysError(f"gallery {path}: unknown key {key!r}{hint}")
        for key, kind in (("defaults", dict), ("variants", list), ("jobs", list), ("name", str)):
            if key in spec and not isinstance(spec[key], kind):
                what = {"defaults": "a table ([defaults])", "variants": "an array of tables ([[variants]])",
                        "jobs": "an array of tables ([[jobs]])", "name": "a string"}[key]
                raise GatysError(f"gallery {path}: {key} must be {what}")
        return cls(spec.get("contents", ()), spec.get("styles", ()), spec.get("losses"), spec.get("defaults"),
                   spec.get("variants", ()), spec.get("jobs", ()), root=path.parent,
                   name=spec.get("name", path.stem), source=f"gallery {path}")

    # -- building the jobs ------------------------------------------------------------
    def _product_jobs(self, contents, styles, losses, variants) -> list[PlannedJob]:
        if not contents and not styles:
            raise GatysError(f"{self.source}: list contents and styles (images or globs), or give [[jobs]]")
        content_paths = self._images(contents, "contents")
        style_paths = self._images(styles, "styles")
        loss_axis = self._losses(losses)
        variant_axis = self._variants(variants, sweeping_losses=losses is not None)
        self.axes = {"contents": len(content_paths), "styles": len(style_paths), "losses": len(loss_axis),
                     "variants": len(variant_axis)}
        groups = []  # (loss label, variant name, config), every config parsed before any work
        for loss, specs in loss_axis:
            for variant, settings, source in variant_axis:
                config = self._config({**self.defaults, **settings, **({"loss": list(specs)} if specs else {})},
                                      source)
                groups.append((loss or _loss_label(config.style_losses), variant, config))
        content_labels, style_labels = _labels(content_paths, self.root), _labels(style_paths, self.root)
        return [PlannedJob(Job(content, (style,), config), content_labels[content], style_labels[style], loss, variant)
                for content in content_paths for style in style_paths for loss, variant, config in groups]

    def _explicit_jobs(self, tables: Sequence[Mapping[str, Any]]) -> list[PlannedJob]:
        parsed = []
        for number, table in enumerate(tables, 1):
            source = f"{self.source} [[jobs]] #{number}"
            if not isinstance(table, Mapping):
                raise GatysError(f"{source}: a job must be a table with content and style")
            table = dict(table)
            for key in ("content", "style"):
                if key not in table:
                    raise GatysError(f"{source}: {key} is missing")
            content = self._images([table.pop("content")], "content", source, allow_globs=False)[0]
            styles = table.pop("style")
            styles = tuple(self._images(styles, "style", source, allow_globs=False))
            name = _name(table.pop("name", None), source)
            config = self._config({**self.defaults, **_option_table(table, source)}, source)
            parsed.append((content, styles, config, _loss_label(config.style_losses),
                           name if name is not None else _settings_label(table, skip=("loss",))))
        content_labels = _labels([content for content, *_ in parsed], self.root)
        style_labels = _labels(_unique(styles for _, styles, *_ in parsed), self.root)
        return [PlannedJob(Job(content, styles, config), content_labels[content], style_labels[styles], loss, variant)
                for content, styles, config, loss, variant in parsed]

    def _images(self, value: Any, axis: str, source: str | None = None, allow_globs: bool = True) -> list[Path]:
        """Paths (globs expanded, sorted) relative to the root; each must be a file."""
        source = source or self.source
        items = [value] if isinstance(value, (str, os.PathLike)) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(item, (str, os.PathLike)) for item in items):
            raise GatysError(f"{source}: {axis} must be a list of image paths or globs, got {value!r}")
        if not items:
            raise GatysError(f"{source}: {axis} is empty: list at least one image")
        paths: list[Path] = []
        for item in items:
            path = self.root / Path(item).expanduser()
            if allow_globs and glob.has_magic(str(item)):
                matches = sorted(Path(match) for match in glob.glob(str(path), recursive=True) if Path(match).is_file())
                if not matches:
                    raise GatysError(f"{source}: {axis} pattern {str(item)!r} matches no file in {path.parent}")
                paths.extend(matches)
            elif not path.is_file():
                reason = "it is a directory" if path.is_dir() else "no such file"
                raise GatysError(f"{source}: {axis} image {str(item)!r}: {reason} ({path})")
            else:
                paths.append(path)
        return _unique(path.resolve() for path in paths)

    def _losses(self, losses: Any) -> list[tuple[str, tuple[str, ...]]]:
        """(label, specs) per loss; one entry with no specs (the defaults' loss) without an axis."""
        if losses is None:
            return [("", ())]
        if "loss" in self.defaults:
            raise GatysError(f"{self.source}: loss is set in [defaults] and swept by losses; keep one")
        if isinstance(losses, str) or not isinstance(losses, (list, tuple)):
            raise GatysError(f"{self.source}: losses must be a list of loss specs, e.g. [\"gram\", \"moments\"]")
        if not losses:
            raise GatysError(f"{self.source}: losses is empty: list at least one loss spec (see `gatys losses`)")
        axis = []
        for spec in losses:
            specs = (spec,) if isinstance(spec, str) else tuple(spec) if isinstance(spec, (list, tuple)) else None
            if not specs or not all(isinstance(item, str) for item in specs):
                raise GatysError(f"{self.source}: each of losses must be a loss spec or a list of specs, got {spec!r}")
            axis.append((_loss_label(specs), specs))
        _check_unique([label for label, _ in axis], "losses", self.source)
        return axis

    def _variants(self, variants: Any, sweeping_losses: bool) -> list[tuple[str, dict[str, Any], str]]:
        """(name, options, source) per variant; one unnamed variant without any."""
        if not isinstance(variants, (list, tuple)):
            raise GatysError(f"{self.source}: variants must be an array of tables ([[variants]])")
        if not variants:
            return [("", {}, f"{self.source} [defaults]")]
        axis = []
        for number, table in enumerate(variants, 1):
            source = f"{self.source} [[variants]] #{number}"
            if not isinstance(table, Mapping):
                raise GatysError(f"{source}: a variant must be a table of options, e.g. {{ name = \"strong\", "
                                 "style-weight = 5 }")
            table = dict(table)
            name = _name(table.pop("name", None), source)
            settings = _option_table(table, source)
            if "loss" in settings and sweeping_losses:
                raise GatysError(f"{source}: sets loss, which losses sweeps; put the loss in losses")
            axis.append((name if name is not None else _settings_label(settings) or f"variant {number}",
                         settings, source))
        _check_unique([name for name, _, _ in axis], "variant names", self.source)
        return axis

    def _config(self, settings: Mapping[str, Any], source: str) -> TransferConfig:
        try:
            return settings_from(settings, {}, source=source)[0]
        except GatysError as error:
            message = str(error)
            raise GatysError(message if message.startswith(source) else f"{source}: {message}") from None
        except TypeError as error:  # a value of a type the dataclass cannot take at all
            raise GatysError(f"{source}: {error}") from None

    # -- planning and running -----------------------------------------------------------
    def plan(self, store: Store | str | os.PathLike) -> "Plan":
        """Each job's status in the store, and an estimate of the time the missing ones take."""
        store = store if isinstance(store, Store) else Store(store)
        _check_images_readable(path for job in self.jobs for path in job.job.inputs)
        planned = [dataclasses.replace(job, status=store.status(job.id)) for job in self.jobs]
        return Plan(self, planned, store)

    def run(self, directory: str | os.PathLike, backend: str = "local", workers: int | None = None,
            address: str | None = None, retry_failed: bool = False, progress: bool = True) -> "Summary":
        """Run every job not yet done into the store at `directory`, then rebuild its outputs."""
        if backend not in BACKENDS:
            raise GatysError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise GatysError(f"workers must be a whole number ≥ 1, got {workers!r}")
        if backend == "ray":
            from .gallery_ray import check_address
            check_address(address)  # before any work: Ray is an optional extra, the address may be wrong
        started = time.perf_counter()
        store = Store(Path(directory).expanduser().resolve())
        plan = self.plan(store)
        todo = plan.to_run(retry_failed)
        say = _say if progress else (lambda line: None)
        if todo:
            say(plan.describe(retry_failed, workers).splitlines()[0] + f"; running {len(todo)} on {backend}")
            reports, interrupted = _execute(store, todo, backend, workers, address, progress)
        else:
            say(plan.nothing_to_do())
            reports, interrupted = [], False
        after = self.plan(store)
        outputs = write_outputs(after)
        counts = Counter(job_report.status for job_report in reports)
        summary = Summary(done=counts["done"], skipped=plan.total - len(todo) + counts["skipped"],
                          failed=counts["failed"], seconds=time.perf_counter() - started, total=after.total,
                          finished=after.done, interrupted=interrupted, outputs=outputs,
                          failures=[(job.id, job.describe(), after.error(job.id)) for job in after.unique()
                                    if job.status == "failed"])
        say(summary.describe())
        return summary


def _execute(store: Store, todo: Sequence[PlannedJob], backend: str, workers: int | None, address: str | None,
             progress: bool) -> tuple[list[JobReport], bool]:
    """Run the jobs on a backend with the gallery's bar; (each job's report as it ended, interrupted)."""
    reports: list[JobReport] = []  # filled as jobs end, so that an interrupted run still counts its own
    bar = GalleryProgress(len(todo)) if progress else None
    by_id = {job.id: job for job in todo}

    def finished(job_report: JobReport) -> None:
        reports.append(job_report)
        if bar is None:
            return
        line = job_report.line(by_id[job_report.id])
        if job_report.status == "interrupted":
            bar.note(line)
        else:
            bar.job(line, failed=job_report.status == "failed")

    jobs = [job.job for job in todo]
    try:
        if backend == "ray":
            from .gallery_ray import run_jobs as run_on_ray
            run_on_ray(store.directory, jobs, address=address, on_report=finished)
        else:
            run_local(store.directory, jobs, workers, on_report=finished)
    except KeyboardInterrupt:
        return reports, True
    finally:
        if bar is not None:
            bar.close()
    return reports, any(job_report.status == "interrupted" for job_report in reports)


def _option_keys() -> set[str]:
    return {option.flag_for(name) for name, option in options().items()}


def _option_table(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Transfer options by TOML key (field names accepted too); gallery-level keys refused."""
    if not isinstance(table, Mapping):
        raise GatysError(f"{source}: expected a table of transfer options, got {table!r}")
    flags = {name: option.flag_for(name) for name, option in options().items()}
    converted = {}
    for key, value in table.items():
        key = flags.get(str(key), str(key))
        if key.replace("_", "-") in RUN_KEYS:
            raise GatysError(f"{source}: {key!r} is not an option here: a gallery lists its images in contents "
                             "and styles (or [[jobs]]) and writes into the folder given by -o")
        converted[key] = value
    return converted


def _name(value: Any, source: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise GatysError(f"{source}: name must be a non-empty string, got {value!r}")
    return value.strip() if value is not None else None


def _loss_label(specs: Sequence[str]) -> str:
    return " + ".join(specs)


def _settings_label(settings: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    """`style-weight=5, tv-weight=0`: a variant named by its options."""
    def text(value: Any) -> str:
        return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return ", ".join(f"{str(key).replace('_', '-')}={text(value)}" for key, value in settings.items()
                     if key not in skip)


def _did_you_mean(key: Any, keys: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(keys), n=2)
    return f"; did you mean {' or '.join(close)}?" if close else f"; valid keys: {', '.join(keys)}"


def _check_unique(labels: Sequence[str], what: str, source: str) -> None:
    repeated = [label for label, count in Counter(labels).items() if count > 1]
    if repeated:
        raise GatysError(f"{source}: {what} must differ; {repeated[0]!r} is given twice")


def _unique(items: Iterable) -> list:
    return list(dict.fromkeys(items))


def _labels(items: Sequence[Path | tuple[Path, ...]], root: Path) -> dict:
    """A label per image (or blend of images): its file name, or its path where names collide."""
    def name(item, full: bool) -> str:
        paths = item if isinstance(item, tuple) else (item,)
        return " + ".join(_relative(path, root) if full else path.name for path in paths)
    names = Counter(name(item, False) for item in items)
    return {item: name(item, names[name(item, False)] > 1) for item in items}


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _check_images_readable(paths: Iterable[Path]) -> None:
    """Open each input's header, so that a corrupt image stops the gallery before any work."""
    for path in _unique(paths):
        _image_size(path)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header; GatysError when it is not an image."""
    try:
        with Image.open(path) as image:
            return image.size
    except OSError as error:
        reason = "not an image Pillow can identify" if isinstance(error, Image.UnidentifiedImageError) \
            else error.strerror or str(error)
        raise GatysError(f"cannot read image {path}: {reason}") from None


# ---------------------------------------------------------------------------- the plan

@dataclass
class Plan:
    """A gallery's jobs with their status in a store; counts over distinct ids."""

    gallery: Gallery
    jobs: list[PlannedJob]
    store: Store

    def unique(self) -> list[PlannedJob]:
        """One planned job per id (two entries of a gallery may be the same job)."""
        return list({job.id: job for job in reversed(self.jobs)}.values())[::-1]

    @property
    def counts(self) -> Counter:
        return Counter(job.status for job in self.unique())

    @property
    def total(self) -> int:
        return len(self.unique())

    @property
    def done(self) -> int:
        return self.counts["done"]

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    @property
    def missing(self) -> int:
        return self.counts["missing"]

    def to_run(self, retry_failed: bool = False) -> list[PlannedJob]:
        wanted = ("missing", "failed") if retry_failed else ("missing",)
        return [job for job in self.unique() if job.status in wanted]

    def error(self, job_id: str) -> str:
        return (self.store.error(job_id) or {}).get("error") or "failed (no message recorded)"

    def estimate(self, retry_failed: bool = False) -> tuple[float, str]:
        """(seconds, how it was estimated) for the jobs left, run one after another.

        From the finished jobs' manifests where there are any (their median seconds per evaluated
        output pixel), otherwise a rough figure per evaluation for the device.
        """
        left = self.to_run(retry_failed)
        timed = [(record["timings"]["total_seconds"], _work_done(record))
                 for record in (self.store.manifest(job.id) for job in self.unique() if job.status == "done")
                 if record and record.get("timings") and _work_done(record)]
        if timed:
            rate = statistics.median(seconds / work for seconds, work in timed)  # a worker's first job warms up
            return sum(rate * _work_planned(job.job) for job in left), \
                f"from {len(timed)} finished job{'s' if len(timed) != 1 else ''}' timings"
        seconds = 0.0
        for job in left:
            per_pixel, per_evaluation = ROUGH_SECONDS.get(_device_type(job.job.config), ROUGH_SECONDS["cpu"])
            evaluations = sum(count for count, _ in _schedule(job.job))
            seconds += ROUGH_JOB_SECONDS + per_pixel * _work_planned(job.job) + per_evaluation * evaluations
        return seconds, "rough: no finished job to time yet"

    def nothing_to_do(self) -> str:
        text = f"nothing to do: {self.done} of {self.total} done"
        if self.failed:
            text += f", {self.failed} failed (--retry-failed reruns them)"
        return text

    def describe(self, retry_failed: bool = False, workers: int | None = None) -> str:
        """The dry run's text: counts, what is left, and the time it should take."""
        axes = self.gallery.axes
        shape = (" (" + " × ".join(f"{count} {name if count != 1 else name.rstrip('s')}"
                                   for name, count in axes.items()) + ")") if axes else " (listed jobs)"
        left = self.to_run(retry_failed)
        lines = [f"gallery {self.gallery.name}: {self.total} jobs{shape}: {self.done} done, "
                 f"{self.failed} failed, {self.missing} missing"]
        if not left:
            lines.append(self.nothing_to_do())
        else:
            seconds, how = self.estimate(retry_failed)
            per_worker = f", about {format_seconds(seconds / workers)} on {workers} workers" \
                if workers and workers > 1 else ""
            lines.append(f"left: {len(left)} job{'s' if len(left) != 1 else ''}, about {format_seconds(seconds)} "
                         f"one after another{per_worker} ({how})")
            if self.failed and not retry_failed:
                lines.append(f"{self.failed} failed job{'s' if self.failed != 1 else ''} will not be rerun "
                             "(--retry-failed reruns them)")
        return "\n".join(lines)


def _schedule(job: Job) -> list[tuple[int, int]]:
    """(evaluations, output pixels) per scale."""
    width, height = _image_size(job.content)
    config = job.config
    result = []
    for index, size in enumerate(config.scale_sizes()):
        rows, columns = scaled_size(height, width, size)
        result.append((config.iterations_at(index), rows * columns))
    return result


def _work_planned(job: Job) -> float:
    return float(sum(evaluations * pixels for evaluations, pixels in _schedule(job)))


def _work_done(record: dict) -> float:
    """Evaluations × output pixels of a finished job, from its manifest's trace."""
    return float(sum(len(scale["losses"]["total"]) * scale["shape"][0] * scale["shape"][1]
                     for scale in record.get("trace", [])))


def _device_type(config: TransferConfig) -> str:
    from .device import resolve_device

    try:
        return resolve_device(config.device).type
    except GatysError:
        return "cpu"


# ---------------------------------------------------------------------------- running

@dataclass(frozen=True)
class JobReport:
    """How one job of a run ended, small enough to send between processes."""

    id: str
    status: str  # done, failed, skipped, interrupted
    error: str | None = None
    seconds: float = 0.0

    @classmethod
    def of(cls, outcome: Outcome) -> "JobReport":
        return cls(outcome.job.id, outcome.status, outcome.error, outcome.seconds)

    def line(self, job: PlannedJob) -> str:
        detail = f": {self.error}" if self.error else ""
        return f"{self.status:<6} {job.describe()}  {self.seconds:.1f} s  {self.id}{detail}"


@dataclass
class Summary:
    """What a run did: jobs done, failed and skipped now, seconds, and what the store holds after."""

    done: int
    skipped: int
    failed: int
    seconds: float
    total: int = 0
    finished: int = 0
    interrupted: bool = False
    outputs: list[Path] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # id, job, message

    @property
    def complete(self) -> bool:
        return self.finished == self.total

    def describe(self) -> str:
        state = "interrupted" if self.interrupted else "gallery"
        index = next((str(path) for path in self.outputs if path.name == "index.html"), "")
        return (f"{state}: {self.done} done, {self.failed} failed, {self.skipped} skipped in {self.seconds:.1f} s; "
                f"{self.finished} of {self.total} done in the store" + (f"; see {index}" if index else ""))


def _say(line: str) -> None:
    """A run's own lines (the plan before, the summary after), on stderr."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def local_workers(jobs: Sequence[Job], workers: int | None) -> list[str | None]:
    """The device of each local worker: one per GPU where jobs run on CUDA (cuda:0, cuda:1, ...),
    else one in this process (None: each job's own device)."""
    import torch

    on_cuda = any(_device_type(job.config) == "cuda" and job.config.device in ("auto", "cuda") for job in jobs)
    gpus = torch.cuda.device_count() if on_cuda else 0
    count = workers or max(1, gpus)
    if gpus:
        return [f"cuda:{index % gpus}" for index in range(count)]
    return ["cpu"] * count if count > 1 else [None]


def run_local(directory: Path, jobs: Sequence[Job], workers: int | None = None,
              on_report: Callable[[JobReport], None] | None = None) -> list[JobReport]:
    """Run jobs into the store at `directory`: in this process with one Transfer, or in one spawned
    process per device, each with its own Transfer."""
    devices = local_workers(jobs, workers)
    report_to = on_report or (lambda job_report: None)
    if devices == [None]:
        from .engine import Transfer

        transfer, store, reports = Transfer(), Store(directory), []
        for job in jobs:
            reports.append(JobReport.of(store.run(transfer, job, retry_failed=True)))
            report_to(reports[-1])
            if reports[-1].status == "interrupted":
                break
        return reports
    return _run_in_processes(directory, jobs, devices, report_to)


def _run_in_processes(directory: Path, jobs: Sequence[Job], devices: list[str],
                      report_to: Callable[[JobReport], None]) -> list[JobReport]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    queue = context.Queue()
    for device in devices:
        queue.put(device)
    threads = max(1, (os.cpu_count() or 1) // len(devices))
    reports = []
    with ProcessPoolExecutor(len(devices), mp_context=context, initializer=_start_worker,
                             initargs=(queue, threads)) as pool:
        futures = {pool.submit(_work, str(directory), job): job for job in jobs}
        try:
            for future in as_completed(futures):
                try:
                    job_report = future.result()
                except Exception as error:  # the worker process died (killed, out of memory)
                    job_report = JobReport(futures[future].id, "failed", f"worker lost: {type(error).__name__}: "
                                                                        f"{error}")
                reports.append(job_report)
                report_to(job_report)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return reports


_WORKER: dict[str, Any] = {}


def _start_worker(devices, threads: int) -> None:
    """A local worker process: its device, its thread count, and (on first use) one Transfer."""
    import torch

    _WORKER["device"] = devices.get()
    if _WORKER["device"] == "cpu":
        torch.set_num_threads(threads)


def _work(directory: str, job: Job) -> JobReport:
    from .engine import Transfer

    if "transfer" not in _WORKER:
        _WORKER["transfer"] = Transfer()
    device = _WORKER["device"]
    if device.startswith("cuda") and job.config.device in ("auto", "cuda"):
        job = dataclasses.replace(job, config=job.config.replace(device=device))  # not in the id
    return JobReport.of(Store(directory).run(_WORKER["transfer"], job, retry_failed=True))


# ---------------------------------------------------------------------------- outputs

def write_outputs(plan: Plan) -> list[Path]:
    """Rebuild the thumbnails, contact sheets and index.html of a gallery from its store."""
    directory = plan.store.directory
    directory.mkdir(parents=True, exist_ok=True)
    thumbs = {}
    for job in plan.unique():
        if job.status == "done":
            thumb = directory / "thumbs" / f"{job.id}.png"
            if not thumb.is_file():  # an id's image never changes: one thumbnail serves every rebuild
                report.thumbnail(plan.store.image_path(job.id), thumb, THUMBNAIL)
            thumbs[job.id] = thumb
    sheets = write_contact_sheets(plan, thumbs)
    index = write_index(plan, sheets, thumbs)
    return [*sheets.values(), index]


def sheet_names(groups: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A file-name-safe name per (loss, variant) group: the loss, the variant, or both, and unique."""
    vary_loss = len({loss for loss, _ in groups}) > 1
    vary_variant = len({variant for _, variant in groups}) > 1
    names: dict[tuple[str, str], str] = {}
    for loss, variant in groups:
        parts = [part for part, varies in ((loss, vary_loss), (variant, vary_variant)) if varies] or [loss or variant]
        base = re.sub(r"[^A-Za-z0-9._=+]+", "-", "-".join(parts)).strip("-.") or "group"
        name, number = base, 2
        while name in names.values():
            name, number = f"{base}-{number}", number + 1
        names[loss, variant] = name
    return names


def write_contact_sheets(plan: Plan, thumbs: Mapping[str, Path]) -> dict[tuple[str, str] | None, Path]:
    """contact-sheet.png (every group side by side) and, where there are several (loss, variant)
    groups, contact-sheet-<name>.png for each: contents as rows, styles as columns."""
    gallery, directory = plan.gallery, plan.store.directory
    content_headers = _headers({job.content: job.job.content for job in plan.jobs}, gallery.contents)
    style_headers = _headers({job.style: job.job.styles[0] for job in plan.jobs}, gallery.styles)
    cells = {(job.content, job.style, job.group): job for job in plan.jobs}

    def sheet(groups: Sequence[tuple[str, str]], title: str) -> Image.Image:
        columns = [(style, group) for group in groups for style in gallery.styles]
        grid = [[_cell(cells.get((content, style, group)), thumbs) for style, group in columns]
                for content in gallery.contents]
        several = len(groups) > 1
        return report.labelled_grid(
            grid, row_labels=gallery.contents,
            column_labels=[f"{style} · {_group_label(group)}" if several else style for style, group in columns],
            row_headers=[content_headers[content] for content in gallery.contents],
            column_headers=[style_headers[style] for style, _ in columns], cell=SHEET_CELL, title=title)

    groups = gallery.groups
    written = {None: _save(sheet(groups, _sheet_title(gallery.name, groups)), directory / "contact-sheet.png")}
    if len(groups) > 1:
        for group, name in sheet_names(groups).items():
            written[group] = _save(sheet([group], _sheet_title(gallery.name, [group])),
                                   directory / f"contact-sheet-{name}.png")
    return written


def _group_label(group: tuple[str, str]) -> str:
    return " · ".join(part for part in group if part) or "default"


def _sheet_title(name: str, groups: Sequence[tuple[str, str]]) -> str:
    return name if len(groups) > 1 else f"{name}: {_group_label(groups[0])}"


def _headers(paths: Mapping[str, Path], labels: Sequence[str]) -> dict[str, Image.Image]:
    """Each input image, shrunk to a contact-sheet cell."""
    headers = {}
    for label in labels:
        with Image.open(paths[label]) as image:
            image.thumbnail((SHEET_CELL * 2, SHEET_CELL * 2))
            headers[label] = image.convert("RGB")
    return headers


def _cell(job: PlannedJob | None, thumbs: Mapping[str, Path]) -> Image.Image | str | None:
    if job is None:
        return None  # an explicit job list need not fill every content × style
    if job.id in thumbs:
        with Image.open(thumbs[job.id]) as image:
            return image.convert("RGB")
    return job.status  # "failed" or "missing", drawn on a grey cell


def _save(image: Image.Image, path: Path) -> Path:
    from .files import write_atomically

    write_atomically(path, lambda stream: image.save(stream, format="PNG"))
    return path


def write_index(plan: Plan, sheets: Mapping[tuple[str, str] | None, Path],
                thumbs: Mapping[str, Path]) -> Path:
    """DIR/index.html: the contact sheets, a table per group linking each thumbnail to its image,
    each job's settings, and the failures with their messages."""
    gallery, directory = plan.gallery, plan.store.directory
    inputs = {label: report.image_data_uri(path, 96) for label, path in
              {**{job.content: job.job.content for job in plan.jobs},
               **{job.style: job.job.styles[0] for job in plan.jobs}}.items()}
    cells = {(job.content, job.style, job.group): job for job in plan.jobs}
    groups = []
    for group in gallery.groups:
        rows = []
        for content in gallery.contents:
            row = []
            for style in gallery.styles:
                job = cells.get((content, style, group))
                row.append(None if job is None else _index_cell(plan, job, thumbs, directory))
            rows.append({"label": content, "image": inputs[content], "cells": row})
        groups.append({"title": _group_label(group), "rows": rows, "sheet": _link(sheets.get(group), directory)})
    failures = [{"id": job.id, "job": job.describe(), "message": plan.error(job.id)}
                for job in plan.unique() if job.status == "failed"]
    return report.write_html(
        directory / "index.html", "gallery.html", name=gallery.name, counts=plan.counts, total=plan.total,
        styles=[{"label": style, "image": inputs[style]} for style in gallery.styles], groups=groups,
        overview=_link(sheets.get(None), directory), failures=failures,
        shared=_shared_settings(plan.jobs))


def _link(path: Path | None, directory: Path) -> str | None:
    return None if path is None else path.relative_to(directory).as_posix()


def _index_cell(plan: Plan, job: PlannedJob, thumbs: Mapping[str, Path], directory: Path) -> dict:
    record = plan.store.manifest(job.id) if job.status == "done" else None
    timing = record["timings"]["total_seconds"] if record and record.get("timings") else None
    return {"id": job.id, "status": job.status, "title": job.describe(),
            "thumb": _link(thumbs.get(job.id), directory), "image": f"jobs/{job.id}.png",
            "settings": {**_job_settings(job.job), **({"seconds": round(timing, 2)} if timing is not None else {}),
                         **({"device": record.get("device")} if record else {}), "id": job.id},
            "error": plan.error(job.id) if job.status == "failed" else None}


def _job_settings(job: Job) -> dict[str, Any]:
    """The job's settings that differ from TransferConfig's defaults, by TOML key (loss always)."""
    defaults, declared = TransferConfig(), options()
    settings = {}
    for name, option in declared.items():
        value = getattr(job.config, name)
        if value != getattr(defaults, name) or name == "style_losses":
            settings[option.flag_for(name)] = list(value) if isinstance(value, tuple) else value
    if len(job.styles) > 1:
        settings["styles"] = [path.name for path in job.styles]
    return settings


def _shared_settings(jobs: Sequence[PlannedJob]) -> dict[str, Any]:
    """The non-default settings every job of the gallery has in common."""
    tables = [_job_settings(job.job) for job in jobs]
    if not tables:
        return {}
    return {key: value for key, value in tables[0].items() if all(table.get(key) == value for table in tables[1:])}
