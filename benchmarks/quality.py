"""Picture quality of the scale schedules: content kept, style objects copied, objective, time (issue 32).

    python -m benchmarks.quality                                  # 8 pairs × old, current, new at 512 px
    python -m benchmarks.quality --size 256 --pairs 1,2 --schedules current,final
    python -m benchmarks.quality --figure-only                    # redraw docs/quality.png from the saved pictures

Each pair (content, style) runs under each schedule, from the content, default settings otherwise:

  old       the old one-scale default: one scale at --size, 500 evaluations, no early stop
  current   the coarse-to-fine default before issue 32: 128 → 256 → 512 px, each style resized with the scale
  final     the same scales, each style at the final size at every scale (style_size final)
  coarse256 two scales, --size / 2 → --size, styles resized with the scale
  deep32    the current scales, but before the last a style layer joins only with ≥ 32 positions along the
            long side (coarse_min_positions 32: relu1–3_1 at 128 px, relu1–4_1 at 256 px, all at 512 px)
  deep32_256  two scales, --size / 2 → --size, with coarse_min_positions 32 (the default of 2026-12-03)
  cw4       deep32_256 with the content weight ×4 at the coarse scale (coarse_content_weight 4)
  new       TransferConfig(size=--size) as the project defaults it now

Each picture is measured the same way: content_fidelity and luminance_ssim against the content,
copied_object_score against the style (gatys.metrics, no network), and the final-scale objective and its
style term in float32 at --size under one objective for every schedule (Transfer.score with one scale at
--size), with the evaluations and seconds per scale of the run. Results merge into
benchmarks/results/quality-<cpu>.json (keyed by size, pair and schedule), so subsets can be run one after
another; pictures are kept in benchmarks/results/quality/<size>/. The figure, rows pairs and columns
content, style, old, current, new, is docs/quality.png. `python -m benchmarks --only quality` runs it too.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Sequence

from PIL import Image

from gatys import Transfer, TransferConfig
from gatys.device import device_name, resolve_device, resolve_precision
from gatys.images import load_image
from gatys.metrics import COPY_THRESHOLD, content_fidelity, find_copied_object, luminance_ssim
from gatys.report import labelled_grid

from . import tables
from .machine import describe
from .measure import ROOT

IMAGES = ROOT / "examples" / "images"
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "docs" / "quality.png"
# Styles with faces, figures or objects first, then two texture styles; contents with skies and water.
PAIRS = [
    ("sailboat.jpg", "woman-with-hat-matisse.jpg"),
    ("chicago.jpg", "vermeer_pearl_earring.jpg"),
    ("cornell.jpg", "vangogh_self_portrait_1889.jpg"),
    ("newyork.jpg", "delaunay_portrait_metzinger.jpg"),
    ("sailboat.jpg", "hokusai_great_wave.jpg"),
    ("chicago.jpg", "seurat_grande_jatte_study.jpg"),
    ("chelsea.png", "starry_night.jpg"),
    ("astronaut.png", "the_scream.jpg"),
]
FIGURE_SCHEDULES = ("old", "current", "new")
# Seconds per warm evaluation ≈ overhead + per pixel × pixels: the line through docs/performance.md's bf16
# measurements on the 2-core AMX Xeon, quiet (0.023 s at 128×85 px, 0.063 s at 256×170, 0.20–0.30 at
# 512×341). "modelled s" prices a run's evaluations at it, so schedules measured while other processes
# shared the CPU still compare by their work.
COST_OVERHEAD = 0.0097
COST_PER_PIXEL = 1.225e-6


def octave_scales(size: int, coarsest: int = 128) -> tuple[int, ...]:
    """The scales of the coarse-to-fine default before issue 32: from about `coarsest` px, doubling up to size."""
    octaves = 1 + max(0, math.floor(math.log2(size / coarsest)))
    return tuple(max(16, round(size / 2 ** (octaves - 1 - i))) for i in range(octaves))


def schedules(size: int) -> dict[str, dict]:
    """Schedule name → TransferConfig settings at output size `size` (each pinned, so a new default leaves
    them as they were; `new` is whatever TransferConfig defaults to now)."""
    before = octave_scales(size)
    budgets = tuple((80, 150, 200, 200, 200)[len(before) - 1 - i] for i in range(len(before)))
    pinned = dict(scales=before, iterations=budgets, style_size="scale", coarse_min_positions=0,
                  coarse_content_weight=1.0, scale_init="upsampled")
    return {
        "old": dict(scales=(size,), iterations=500, tolerance=0.0),
        "current": pinned,
        "final": dict(pinned, style_size="final"),
        "coarse256": dict(pinned, scales=(size // 2, size), iterations=(150, 80)),
        "deep32": dict(pinned, coarse_min_positions=32),
        "deep32_256": dict(pinned, scales=(size // 2, size), iterations=(150, 80), coarse_min_positions=32),
        "cw4": dict(pinned, scales=(size // 2, size), iterations=(150, 80), coarse_min_positions=32,
                    coarse_content_weight=4.0),
        "m64": dict(size=size, coarse_min_positions=64),
        "cw8": dict(size=size, coarse_content_weight=8.0),
        "m64cw2": dict(size=size, coarse_min_positions=64, coarse_content_weight=2.0),
        "m64cw3": dict(size=size, coarse_min_positions=64, coarse_content_weight=3.0),
        "new": dict(size=size),
    }


def cpu_label(device) -> str:
    """A short name of the machine class for the results file: cuda, amx, avx512 or avx2."""
    if device.type != "cpu":
        return device.type
    flags = describe(device)["cpu_flags"]
    return "amx" if "amx_bf16" in flags else "avx512" if "avx512f" in flags else "avx2"


def measure(transfer: Transfer, content: Path, style: Path, settings: dict, size: int) -> tuple[dict, Image.Image]:
    """One run under `settings`, timed, and its picture measured (metrics, common float32 objective)."""
    config = TransferConfig(**settings)
    started = time.perf_counter()
    result = transfer.run(content, style, config=config)
    seconds = time.perf_counter() - started
    common = TransferConfig(scales=(size,), precision="fp32")  # one objective for every schedule
    scored = transfer.score(result.image, content, style, config=common)
    content_image, style_image = load_image(content), load_image(style)
    copy = find_copied_object(result.image, style_image)
    timings = result.timings
    measured = {
        "settings": {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()},
        "scales": list(config.scale_sizes()),
        "style_sizes": [config.style_size_at(s) for s in config.scale_sizes()],
        "seconds": seconds,
        "evaluations": timings["evaluations"],
        "scale_seconds": timings["scale_seconds"],
        "seconds_per_evaluation": timings["seconds_per_evaluation"],
        "shapes": [scale["shape"] for scale in result.trace],
        "stopped_because": [scale.get("stopped_because") for scale in result.trace],
        "objective": scored["total"], "style": scored["style"], "content": scored["content"],
        "content_fidelity": content_fidelity(result.image, content_image),
        "luminance_ssim": luminance_ssim(result.image, content_image),
        "copied_object_score": copy.score,
        "copied_output_box": list(copy.output_box), "copied_style_box": list(copy.style_box),
    }
    return measured, result.to_pil()


def modelled_seconds(measured: dict) -> float:
    """The run's evaluations priced at COST_OVERHEAD + COST_PER_PIXEL × pixels of their scale."""
    return sum(count * (COST_OVERHEAD + COST_PER_PIXEL * height * width)
               for count, (height, width) in zip(measured["evaluations"], shapes(measured)))


def shapes(measured: dict) -> list[list[int]]:
    """(H, W) of each scale; results written before shapes were recorded came from square contents."""
    return measured.get("shapes") or [[size, size] for size in measured["scales"]]


def results_path(device) -> Path:
    return RESULTS / f"quality-{cpu_label(device)}.json"


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"machine": None, "sizes": {}}


def pair_name(content: str, style: str) -> str:
    return f"{Path(content).stem} × {Path(style).stem}"


def picture_path(size: int, content: str, style: str, schedule: str) -> Path:
    return RESULTS / "quality" / str(size) / f"{Path(content).stem}__{Path(style).stem}__{schedule}.png"


def run(pairs: Sequence[tuple[str, str]] = PAIRS, size: int = 512, names: Sequence[str] = FIGURE_SCHEDULES,
        out: Path | None = None, figure: Path | None = FIGURE, echo: bool = True) -> dict:
    """Each pair under each named schedule at `size`, merged into `out` (default results/quality-<cpu>.json)."""
    device = resolve_device("auto")
    out = out or results_path(device)
    report = load(out)
    report["machine"] = {"device": device_name(device), "precision": resolve_precision("auto", device),
                         "cpu_flags": describe(device)["cpu_flags"]}
    at_size = report["sizes"].setdefault(str(size), {})
    known = schedules(size)
    transfer = Transfer()
    for content, style in pairs:
        row = at_size.setdefault(pair_name(content, style), {"content": content, "style": style, "schedules": {}})
        for name in names:
            twin = same_run(row["schedules"], known, name)
            if twin is not None:  # the same settings already ran: a run is deterministic, so reuse it
                measured = dict(row["schedules"][twin], same_as=twin)
            else:
                measured, image = measure(transfer, IMAGES / content, IMAGES / style, known[name], size)
                path = picture_path(size, content, style, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path)
                measured["picture"] = str(path.relative_to(ROOT))
            row["schedules"][name] = measured
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=1) + "\n")
            if echo:
                print(line(pair_name(content, style), name, measured), flush=True)
    if figure is not None:
        draw(report, size, figure)
    return report


def same_run(measured: dict, known: dict[str, dict], name: str) -> str | None:
    """Another schedule already measured for this pair whose TransferConfig equals `name`'s, if any."""
    config = resolved(TransferConfig(**known[name]))
    for other, result in measured.items():
        if other != name and other in known and "same_as" not in result and \
                resolved(TransferConfig(**known[other])) == config:
            return other
    return None


def resolved(config: TransferConfig) -> TransferConfig:
    """The config with its schedule written out (scales and per-scale budgets), so equal runs compare equal."""
    sizes = config.scale_sizes()
    return config.replace(size=sizes[-1], octaves=None, scales=sizes,
                          iterations=tuple(config.iterations_at(i) for i in range(len(sizes))))


def line(pair: str, name: str, m: dict) -> str:
    return (f"{pair:40} {name:9} fidelity {m['content_fidelity']:.3f} ssim {m['luminance_ssim']:.3f} "
            f"copy {m['copied_object_score']:.3f} objective {m['objective']:.4f} style {m['style']:.4f} "
            f"evaluations {m['evaluations']} {m['seconds']:.1f} s {m['stopped_because']}")


def draw(report: dict, size: int, figure: Path, names: Sequence[str] = FIGURE_SCHEDULES, cell: int = 180) -> None:
    """Rows pairs; columns content, style and each schedule's picture (a grey cell where one is missing)."""
    rows, labels = [], []
    for pair, row in report["sizes"].get(str(size), {}).items():
        cells = [Image.open(IMAGES / row["content"]).convert("RGB"), Image.open(IMAGES / row["style"]).convert("RGB")]
        for name in names:
            measured = row["schedules"].get(name)
            cells.append(Image.open(ROOT / measured["picture"]).convert("RGB") if measured else "missing")
        rows.append(cells)
        labels.append(pair)
    if not rows:
        return
    columns = ["content", "style", *(f"{name}: {describe_schedule(name)}" for name in names)]
    sheet = labelled_grid(rows, row_labels=labels, column_labels=columns, cell=cell)
    figure.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(figure, optimize=True)


def describe_schedule(name: str) -> str:
    return {"old": "one scale, 500 evaluations", "current": "128, 256, 512 px, style with the scale",
            "final": "style at the final size", "coarse256": "256 to 512",
            "deep32": "128 to 256 to 512, deep layers only from 32 positions",
            "deep32_256": "256 to 512, deep layers only from 32 positions",
            "cw4": "deep32_256, content ×4 at 256 px", "new": "the new default"}.get(name, name)


def table(report: dict, size: int) -> str:
    """Per pair and schedule: the metrics, the objective against old's, evaluations, seconds against old's."""
    rows = []
    for pair, row in report["sizes"].get(str(size), {}).items():
        old = row["schedules"].get("old")
        for name, m in row["schedules"].items():
            versus = (f"{m['objective'] / old['objective'] - 1:+.1%}", f"{m['seconds'] / old['seconds']:.2f}×",
                      f"{modelled_seconds(m) / modelled_seconds(old):.2f}×") if old else ("–", "–", "–")
            rows.append((pair, name, f"{m['content_fidelity']:.3f}", f"{m['luminance_ssim']:.3f}",
                         f"{m['copied_object_score']:.3f}", f"{m['objective']:.4f}", versus[0],
                         f"{m['style']:.4f}", "/".join(map(str, m["evaluations"])), f"{m['seconds']:.1f}", versus[1],
                         f"{modelled_seconds(m):.1f}", versus[2]))
    return tables.render(
        f"Quality at {size} px: content fidelity, luminance SSIM, copied-object score (copied above "
        f"{COPY_THRESHOLD}), final-scale objective and style term (float32, one objective), evaluations, seconds",
        ("pair", "schedule", "fidelity", "ssim", "copy", "objective", "vs old", "style", "evaluations", "s",
         "time vs old", "modelled s", "vs old"), rows,
        ["modelled s: the evaluations priced at a quiet machine's seconds per evaluation (COST_OVERHEAD + "
         "COST_PER_PIXEL × pixels), so runs measured beside other processes compare by their work"])


def markdown(report: dict, size: int, names: Sequence[str] | None = None) -> str:
    """The table as Markdown, for docs/quality.md: one row per pair and schedule."""
    lines = ["| pair | schedule | fidelity | SSIM | copy | objective (vs old) | style | evaluations | "
             "modelled s (vs old) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for pair, row in report["sizes"].get(str(size), {}).items():
        old = row["schedules"].get("old")
        for name in names or row["schedules"]:
            m = row["schedules"].get(name)
            if m is None:
                continue
            objective = f"{m['objective']:.4f}" + (f" ({m['objective'] / old['objective'] - 1:+.1%})" if old else "")
            seconds = f"{modelled_seconds(m):.0f}" + (f" ({modelled_seconds(m) / modelled_seconds(old):.2f}×)"
                                                      if old else "")
            lines.append(f"| {pair} | {name} | {m['content_fidelity']:.3f} | {m['luminance_ssim']:.3f} | "
                         f"{m['copied_object_score']:.3f} | {objective} | {m['style']:.4f} | "
                         f"{'/'.join(map(str, m['evaluations']))} | {seconds} |")
    return "\n".join(lines)


def criteria(report: dict, size: int, name: str = "new") -> str:
    """Issue 32's criteria for schedule `name` per pair, as Markdown: fidelity ≥ old − 0.05, copy score below
    COPY_THRESHOLD, style term ≤ current's × 1.10, modelled time ≤ old's / 3, objective ≤ old's × 1.02."""
    lines = [f"| pair | fidelity ≥ old − 0.05 | copy < {COPY_THRESHOLD} | style ≤ current × 1.10 | time ≤ old / 3 | "
             "objective ≤ old × 1.02 |", "| --- | --- | --- | --- | --- | --- |"]
    for pair, row in report["sizes"].get(str(size), {}).items():
        runs = row["schedules"]
        m, old, current = runs.get(name), runs.get("old"), runs.get("current")
        if m is None or old is None:
            continue

        def mark(ok: bool, text: str) -> str:
            return f"{text} {'yes' if ok else '**no**'}"

        cells = [mark(m["content_fidelity"] >= old["content_fidelity"] - 0.05,
                      f"{m['content_fidelity']:.3f} vs {old['content_fidelity'] - 0.05:.3f}"),
                 mark(m["copied_object_score"] < COPY_THRESHOLD, f"{m['copied_object_score']:.3f}"),
                 mark(m["style"] <= current["style"] * 1.10, f"{m['style'] / current['style'] - 1:+.1%}")
                 if current else "–",
                 mark(modelled_seconds(m) <= modelled_seconds(old) / 3,
                      f"{modelled_seconds(m) / modelled_seconds(old):.2f}×"),
                 mark(m["objective"] <= old["objective"] * 1.02, f"{m['objective'] / old['objective'] - 1:+.1%}")]
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", default=None, help="1-based pair numbers, e.g. 1,3 (default: all 8)")
    parser.add_argument("--schedules", default=",".join(FIGURE_SCHEDULES),
                        help=f"comma-separated, of {', '.join(schedules(512))}")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--figure-only", action="store_true", help="redraw the figure from the saved results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    pairs = [PAIRS[int(i) - 1] for i in options.pairs.split(",")] if options.pairs else PAIRS
    names = [name.strip() for name in options.schedules.split(",") if name.strip()]
    unknown = set(names) - set(schedules(options.size))
    if unknown:
        raise SystemExit(f"unknown schedules: {', '.join(sorted(unknown))}")
    if options.figure_only:
        report = load(options.out or results_path(resolve_device("auto")))
        draw(report, options.size, options.figure)
    else:
        report = run(pairs, options.size, names, options.out, options.figure)
    print(table(report, options.size))
    print(criteria(report, options.size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
