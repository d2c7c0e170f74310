"""Galleries: many transfers from one spec, planned as jobs, run into a store, shown as contact sheets.

This module is the spec and the public face. A `Gallery` (from arguments, or `Gallery.from_toml`)
is the product contents × styles × losses × variants (or an explicit list of jobs), each a `Job`
with its stable id. `Gallery.plan(store)` says which are done, failed or missing and how long the
rest should take (plan.py); `Gallery.run(directory)` runs what is missing (failed jobs
too with `retry_failed`) on the local backend (local.py: in this process on a CPU; one
spawned process per GPU) or on Ray (ray_backend.py), each worker reusing one `Transfer`, then
rebuilds the thumbnails, contact sheets and index.html from the store (outputs.py). The
store alone decides what is done, so a run killed at any point loses no finished job, and a
rerun does only what is left.

Every spec error (unknown option, missing file, a glob matching nothing, an empty axis, a bad
value) is a GatysError raised when the Gallery is built, before any work.
"""
from __future__ import annotations

import dataclasses
import difflib
import glob
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..callbacks import GalleryProgress
from ..config import RUN_KEYS, TransferConfig, load_toml, options, settings_from
from ..errors import GatysError
from ..jobs import Job
from ..store import Store
from .local import run_local
from .outputs import write_outputs
from .plan import Layout, Plan, PlannedJob, image_size
from .results import JobReport, Summary

SPEC_KEYS = ("name", "contents", "styles", "losses", "defaults", "variants", "jobs")
BACKENDS = ("local", "ray")
MASK_KEYS = ("masks", "style-masks")  # as _option_table spells them: TOML keys


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
        _refuse_masks(self.defaults, f"{source} [defaults]")
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
            hint = ("; transfer options go under [defaults]" if str(key).replace("_", "-") in _toml_keys().values()
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
        for _, settings, source in variant_axis:
            _refuse_masks(settings, source)
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
            options = _option_table(table, source)
            for key in MASK_KEYS:  # like the images, relative to the spec's folder
                if options.get(key) is not None:
                    options[key] = [str(path) for path in self._images(options[key], key, source,
                                                                       allow_globs=False)]
            config = self._config({**self.defaults, **options}, source)
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
        checked = {job.id: store.check(job.id) for job in self.jobs}
        planned = [dataclasses.replace(job, status=checked[job.id][0], why=checked[job.id][1]) for job in self.jobs]
        return Plan(Layout(self.name, self.axes, self.contents, self.styles, self.groups), planned, store)

    def run(self, directory: str | os.PathLike, backend: str = "local", workers: int | None = None,
            address: str | None = None, retry_failed: bool = False, progress: bool = True, batch: int = 1
            ) -> "Summary":
        """Run every job not yet done into the store at `directory`, then rebuild its outputs.

        `batch` > 1 optimises up to that many jobs of one size and settings together, one
        network pass for all (gatys/batch.py): the same pictures, to rounding, and on a GPU
        more of them per second.
        """
        if backend not in BACKENDS:
            raise GatysError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise GatysError(f"workers must be a whole number ≥ 1, got {workers!r}")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise GatysError(f"batch must be a whole number ≥ 1, got {batch!r}")
        if backend == "ray":
            from .ray_backend import check_address
            check_address(address)  # before any work: Ray is an optional extra, the address may be wrong
        started = time.perf_counter()
        store = Store(Path(directory).expanduser().resolve())
        plan = self.plan(store)
        todo = plan.to_run(retry_failed)
        say = _say if progress else (lambda line: None)
        if todo:
            say(plan.describe(retry_failed, workers).splitlines()[0] + f"; running {len(todo)} on {backend}")
            reports, interrupted = _execute(store, todo, backend, workers, address, progress, batch)
        else:
            say(plan.nothing_to_do())
            reports, interrupted = [], False
        after = self.plan(store)
        outputs = write_outputs(after)
        counts = Counter(job_report.status for job_report in reports)
        summary = Summary(done=counts["done"], skipped=plan.total - len(todo) + counts["skipped"],
                          failed=counts["failed"], claimed=counts["claimed"], seconds=time.perf_counter() - started, total=after.total,
                          finished=after.done, interrupted=interrupted, outputs=outputs,
                          failures=after.failures())
        say(summary.describe())
        return summary


def _execute(store: Store, todo: Sequence[PlannedJob], backend: str, workers: int | None, address: str | None,
             progress: bool, batch: int = 1) -> tuple[list[JobReport], bool]:
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
            from .ray_backend import run_jobs as run_on_ray
            run_on_ray(store.directory, jobs, address=address, on_report=finished, batch=batch)
        else:
            run_local(store.directory, jobs, workers, on_report=finished, batch=batch)
    except KeyboardInterrupt:
        return reports, True
    finally:
        if bar is not None:
            bar.close()
    return reports, any(job_report.status == "interrupted" for job_report in reports)


def _say(line: str) -> None:
    """A run's own lines (the plan before, the summary after), on stderr."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _toml_keys() -> dict[str, str]:
    """Each transfer option's TOML key, by field name."""
    return {name: option.flag_for(name) for name, option in options().items()}


def _option_table(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Transfer options by TOML key (field names accepted too); gallery-level keys refused."""
    if not isinstance(table, Mapping):
        raise GatysError(f"{source}: expected a table of transfer options, got {table!r}")
    flags = _toml_keys()
    converted = {}
    for key, value in table.items():
        key = flags.get(str(key), str(key))
        if key.replace("_", "-") in RUN_KEYS:
            raise GatysError(f"{source}: {key!r} is not an option here: a gallery lists its images in contents "
                             "and styles (or [[jobs]]) and writes into the folder given by -o")
        converted[key] = value
    return converted


def _refuse_masks(settings: Mapping[str, Any], source: str) -> None:
    if any(key in settings for key in MASK_KEYS):
        raise GatysError(f"{source}: masks belong to one content and its styles: give them in a [[jobs]] table, "
                         "beside its content and style")


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
        image_size(path)
