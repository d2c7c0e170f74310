"""Time to a finished picture: a schedule against the old default (one scale, 500 evaluations) at 512 px.

    python -m benchmarks.time_to_picture                      # the current default against the old one
    python -m benchmarks.time_to_picture --candidate 128,256,512:300,200,100 --pairs 1
    python -m benchmarks.time_to_picture --first 2 --pairs 3 --no-256 --out results/mine.json

For each of the four sample pairs (chelsea and astronaut × starry_night and the_scream) both
run from the content with default settings otherwise; the final images are scored with one
objective, the final scale's in float32 (Transfer.score), so the schedules compare on the
same number. "style left" is the style term at the final image over the style term at the
content image, at the size it was made: lower is more strongly stylised; the 256 px old
default's is printed beside it. Writes results/time_to_picture.json and a side-by-side
picture, results/time_to_picture.png.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gatys import Transfer, TransferConfig
from gatys.device import device_name, resolve_device, resolve_precision
from gatys.report import labelled_grid

from .machine import describe
from .precision_check import CONTENTS, STYLES
from .measure import ROOT

IMAGES = ROOT / "examples" / "images"
RESULTS = ROOT / "benchmarks" / "results"
OLD_DEFAULT = dict(scales=(512,), iterations=500, tolerance=0.0)
OLD_256 = dict(scales=(256,), iterations=500, tolerance=0.0)


def parse_candidate(text: str) -> dict:
    """'128,256,512:300,200,100' → scales and iterations per scale ('default': the current default)."""
    if text == "default":
        return {}
    scales, _, iterations = text.partition(":")
    return {"scales": tuple(int(s) for s in scales.split(",")),
            "iterations": tuple(int(i) for i in iterations.split(","))}


def style_left(transfer: Transfer, image, content: Path, style: Path, config: TransferConfig) -> float:
    """The style term at the image over the style term at the content, at the image's size, in float32."""
    scored = config.replace(precision="fp32")
    return (transfer.score(image, content, style, config=scored)["style"]
            / transfer.score(content, content, style, config=scored.replace(scales=(max(image.shape[-2:]),)))["style"])


def measure(transfer: Transfer, content: Path, style: Path, settings: dict) -> dict:
    config = TransferConfig(**settings)
    started = time.perf_counter()
    result = transfer.run(content, style, config=config)
    seconds = time.perf_counter() - started
    final = TransferConfig(scales=(512,))  # one objective for every schedule: the final scale's, float32
    objective = transfer.score(result.image, content, style, config=final.replace(precision="fp32"))["total"]
    return {"settings": {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()},
            "seconds": seconds, "objective": objective,
            "evaluations": result.timings["evaluations"],
            "stopped_because": [scale.get("stopped_because") for scale in result.trace],
            "style_left": style_left(transfer, result.image, content, style, config), "image": result.to_pil()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", default="default", help="scales:iterations, or 'default'")
    parser.add_argument("--pairs", type=int, default=4, help="how many of the four sample pairs")
    parser.add_argument("--first", type=int, default=1, help="the first pair to run (1-4), to go on where a run stopped")
    parser.add_argument("--no-256", dest="at_256", action="store_false",
                        help="leave out the old default at 256 px (the stylisation reference, a third run per pair)")
    parser.add_argument("--out", default=str(RESULTS / "time_to_picture.json"))
    args = parser.parse_args()
    device = resolve_device("auto")
    transfer = Transfer()
    pairs = [(IMAGES / c, IMAGES / s) for c in CONTENTS for s in STYLES][args.first - 1 : args.first - 1 + args.pairs]
    rows, pictures = [], []
    for content, style in pairs:
        old = measure(transfer, content, style, OLD_DEFAULT)
        new = measure(transfer, content, style, parse_candidate(args.candidate))
        small = measure(transfer, content, style, OLD_256) if args.at_256 else None
        pictures.append([old.pop("image"), new.pop("image")] + ([small.pop("image")] if small else []))
        rows.append({"content": content.name, "style": style.name, "old": old, "new": new, "old_256": small})
        at_256 = f", old at 256 px {small['style_left']:.3f}" if small else ""
        print(f"{content.name:14} {style.name:18} old {old['seconds']:6.1f} s {old['objective']:.4f}   "
              f"new {new['seconds']:6.1f} s {new['objective']:.4f} ({new['seconds'] / old['seconds']:.2f}× the time, "
              f"objective {new['objective'] / old['objective'] - 1:+.2%})   style left: new {new['style_left']:.3f}, "
              f"old {old['style_left']:.3f}{at_256}   {new['stopped_because']}", flush=True)
    machine = {"device": device_name(device), "precision": resolve_precision("auto", device),
               "cpu_flags": describe(device)["cpu_flags"]}
    Path(args.out).write_text(json.dumps({"machine": machine, "candidate": args.candidate, "pairs": rows}, indent=2))
    sheet = labelled_grid(pictures, row_labels=[f"{r['content']} × {r['style']}" for r in rows],
                          column_labels=["old default: 512 px, 500 evaluations", f"new: {args.candidate}",
                                         "old default at 256 px"][: len(pictures[0])], cell=256)
    sheet.save(Path(args.out).with_suffix(".png"))


if __name__ == "__main__":
    main()
