"""A gallery's outputs, rebuilt from its store: thumbnails, contact sheets and index.html.

One contact sheet shows every (loss, variant) group side by side, and each group gets its own
where there are several: contents as rows, styles as columns, a grey cell for a failed or
missing job. index.html links each thumbnail to its image and lists each job's settings and the
failures with their messages.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image

from .. import report
from ..config import TransferConfig, options
from ..files import write_atomically
from ..jobs import Job
from .plan import Plan, PlannedJob

THUMBNAIL = 256  # longest side of DIR/thumbs/<id>.png
SHEET_CELL = 160  # contact-sheet cell, pixels


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
    layout, directory = plan.layout, plan.store.directory
    content_paths, style_paths = _input_paths(plan)
    content_headers = _headers(content_paths, layout.contents)
    style_headers = _headers(style_paths, layout.styles)
    cells = _cells(plan)

    def sheet(groups: Sequence[tuple[str, str]], title: str) -> Image.Image:
        columns = [(style, group) for group in groups for style in layout.styles]
        grid = [[_cell(cells.get((content, style, group)), thumbs) for style, group in columns]
                for content in layout.contents]
        several = len(groups) > 1
        return report.labelled_grid(
            grid, row_labels=layout.contents,
            column_labels=[f"{style} · {_group_label(group)}" if several else style for style, group in columns],
            row_headers=[content_headers[content] for content in layout.contents],
            column_headers=[style_headers[style] for style, _ in columns], cell=SHEET_CELL, title=title)

    groups = layout.groups
    written = {None: _save(sheet(groups, _sheet_title(layout.name, groups)), directory / "contact-sheet.png")}
    if len(groups) > 1:
        for group, name in sheet_names(groups).items():
            written[group] = _save(sheet([group], _sheet_title(layout.name, [group])),
                                   directory / f"contact-sheet-{name}.png")
    return written


def _input_paths(plan: Plan) -> tuple[dict[str, Path], dict[str, Path]]:
    """The image behind each content label and each style label (a blend's first style)."""
    return ({job.content: job.job.content for job in plan.jobs},
            {job.style: job.job.styles[0] for job in plan.jobs})


def _cells(plan: Plan) -> dict[tuple[str, str, tuple[str, str]], PlannedJob]:
    """The job at each (content, style, group) of the sheets and the index."""
    return {(job.content, job.style, job.group): job for job in plan.jobs}


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
    write_atomically(path, lambda stream: image.save(stream, format="PNG"))
    return path


def write_index(plan: Plan, sheets: Mapping[tuple[str, str] | None, Path],
                thumbs: Mapping[str, Path]) -> Path:
    """DIR/index.html: the contact sheets, a table per group linking each thumbnail to its image,
    each job's settings, and the failures with their messages."""
    layout, directory = plan.layout, plan.store.directory
    content_paths, style_paths = _input_paths(plan)
    inputs = {label: report.image_data_uri(path, 96) for label, path in {**content_paths, **style_paths}.items()}
    cells = _cells(plan)
    groups = []
    for group in layout.groups:
        rows = []
        for content in layout.contents:
            row = []
            for style in layout.styles:
                job = cells.get((content, style, group))
                row.append(None if job is None else _index_cell(plan, job, thumbs, directory))
            rows.append({"label": content, "image": inputs[content], "cells": row})
        groups.append({"title": _group_label(group), "rows": rows, "sheet": _link(sheets.get(group), directory)})
    failures = [{"id": job_id, "job": job, "message": message} for job_id, job, message in plan.failures()]
    return report.write_html(
        directory / "index.html", "gallery.html", name=layout.name, counts=plan.counts, total=plan.total,
        styles=[{"label": style, "image": inputs[style]} for style in layout.styles], groups=groups,
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
