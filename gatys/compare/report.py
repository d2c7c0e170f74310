"""A study's files: report.html, grid.png, cross.csv, pairs.csv and study.json, all in the study folder.

The page is self-contained (the grid inlined as a data: URI) and renders through the shared
escaping templates (gatys/report.py), so every file name, loss spec and setting is shown as text.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .. import report as shared
from ..images import to_pil
from . import controls, verdicts
from .result import StudyResult

GRID_CELL = 160
FILES = ("report.html", "grid.png", "cross.csv", "pairs.csv", "study.json")
PAIR_COLUMNS = ("a", "b", "verdict", "seeds", "effect", "ci_low", "ci_high", "level", "p", "corrected_p",
                "smallest_p", "margin", "seeds_to_equivalence", "seeds_to_difference", "between_mean",
                "within_mean", "ratio")


def write(directory: Path, result: StudyResult, content: torch.Tensor, style: torch.Tensor,
          outputs: dict[tuple[str, int], torch.Tensor]) -> None:
    """Every file of the study (study.json last: its timings then include the rest)."""
    grid = grid_image(result, content, style, outputs)
    shared.thumbnail(grid, directory / "grid.png", max(grid.size))  # written atomically, at full size
    shared.write_csv(directory / "cross.csv", ["optimised", "scored_by", "seed", "value", "value_at_init",
                                               "remaining"],
                     ([r["optimised"], r["scored_by"], r["seed"], r["value"], r["value_at_init"], r["remaining"]]
                      for r in result.cross["records"]))
    shared.write_csv(directory / "pairs.csv", PAIR_COLUMNS, ([p[name] for name in PAIR_COLUMNS] for p in result.pairs))
    shared.write_html(directory / "report.html", "compare.html", **page_context(result, grid))
    write_json(directory, result)


def write_json(directory: Path, result: StudyResult) -> None:
    shared.write_json(directory / "study.json", result.as_dict())


def grid_image(result: StudyResult, content: torch.Tensor, style: torch.Tensor,
               outputs: dict[tuple[str, int], torch.Tensor]):
    """Content, style, then each loss's output, one row per seed (placeholders for failed runs)."""
    settings = result.settings
    labels, seeds = [*settings["losses"], *controls.LABELS], range(settings["seeds"])
    status = {(r["loss"], r["seed"]): r["status"] for r in result.runs}
    inputs = [to_pil(content), to_pil(style)]
    cells = [inputs + [to_pil(outputs[label, seed]) if (label, seed) in outputs else status.get((label, seed),
                                                                                                "missing")
                       for label in labels]
             for seed in seeds]
    budget = f"{settings['seconds']:g} s" if settings["seconds"] else f"{settings['budget']} evaluations"
    optimizer = settings["config"]["optimizer"] + (" (resampled)" if settings["config"]["resample"] else "")
    title = (f"{Path(settings['content']).name} in the style of {Path(settings['style']).name}: "
             f"{settings['frame']} frame, match {settings['match']}, {optimizer}, {budget} per run, "
             f"{settings['config']['size']} px")
    return shared.labelled_grid(cells, row_labels=[f"seed {seed}" for seed in seeds],
                                column_labels=["content", "style", *labels], cell=GRID_CELL, title=title)


def page_context(result: StudyResult, grid) -> dict:
    """What compare.html shows: plain values and rows, every one escaped by the template."""
    settings = result.settings
    labels = settings["losses"]
    cross = result.cross
    to_style = {label: [d["distance"] for d in result.distances["to_style"] if d["loss"] == label]
                for label in [*labels, *controls.LABELS]}
    weights = [[label, ", ".join(record["specs"]), record["factor"], record["value_at_init"],
                record["gradient_at_init"], record["matched_ratio"]]
               for label, record in result.weights.items()]
    runs = [[r["loss"], r["seed"], r["status"], r["evaluations"], r["seconds"], r["seconds_per_evaluation"],
             (r["final_losses"] or {}).get("style"), (r["final_losses"] or {}).get("content"), r.get("precision"),
             r.get("device"), r["job"]]
            for r in result.runs]
    pairs = [[p["a"], p["b"], p["verdict"], p["seeds"], p["effect"], _interval(p), p["p"], p["corrected_p"],
              p["smallest_p"], p["between_mean"], p["within_mean"]] for p in result.pairs]
    identities = [[c["identity"], c["layer"], c["loss"], c["formula"], c["relative_error"],
                   "yes" if c["holds"] else "NO"] for c in result.identities]
    flat_settings = {key: value for key, value in settings.items() if key not in ("config", "transfer_options")}
    return {
        "content_name": Path(settings["content"]).name, "style_name": Path(settings["style"]).name,
        "settings": settings, "flat_settings": flat_settings, "config": settings["config"],
        "environment": result.environment, "commands": result.commands,
        "grid": shared.image_data_uri(grid),
        "verdicts": [(p["verdict"], p["sentence"]) for p in result.pairs],
        "space_names": ["vgg", *result.distances.get("spaces", {})],
        "space_rows": [[p["a"], p["b"], p["verdict"], *(p.get(f"verdict_{name}") for name in result.distances.get(
            "spaces", {}))] for p in result.pairs],
        "missing_spaces": result.distances.get("missing_spaces", {}),
        "margin": result.distances.get("margin", {}), "alpha": result.distances.get("alpha"), "level": verdicts.LEVEL,
        "notes": [sentence for sentence in result.verdicts if sentence not in {p["sentence"] for p in result.pairs}],
        "labels": labels, "cross": cross, "heat_range": _style_range(cross),
        "weights": weights, "runs": runs, "pairs": pairs, "identities": identities,
        "failures": [[r["loss"], r["seed"], r["error"]] for r in result.runs if r["status"] == "failed"],
        "to_style": [[label, _mean(values), len(values)] for label, values in to_style.items()],
        "distance_definition": result.distances["definition"],
        "timings": [[name.replace("_", " "), value] for name, value in result.timings.items()],
        "files": [name for name in FILES if name != "report.html"],
    }


def _interval(pair: dict) -> str | None:
    if pair["ci_low"] is None:
        return None
    return f"[{pair['ci_low']:.3g}, {pair['ci_high']:.3g}]"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _style_range(cross: dict) -> tuple[float | None, float | None]:
    """(low, high) of the matrix's style columns (all but content), so the content column does not set the scale."""
    values = [value for row in cross["mean"] for value in row[:-1] if value is not None]
    return (min(values), max(values)) if values else (None, None)
