"""Time to a finished picture: a schedule against the old default (one scale, 500 evaluations) at 512 px.

    python -m benchmarks.time_to_picture                      # the current default against the old one
    python -m benchmarks.time_to_picture --candidate 128,256,512:300,200,100 --pairs 1
    python -m benchmarks.time_to_picture --first 2 --pairs 3 --no-256 --out results/mine.json
    python -m benchmarks.time_to_picture --pastiche          # pastiche at its defaults too (slow: 1000 steps)
    python -m benchmarks.time_to_picture --precision fp32    # the float32 path, also where bf16 is the default

For each of the four sample pairs (chelsea and astronaut × starry_night and the_scream) both
run from the content with default settings otherwise; the final images are scored with one
objective, the final scale's in float32 (Transfer.score), so the schedules compare on the
same number. "style left" is the style term at the final image over the style term at the
content image, at the size it was made: lower is more strongly stylised; the 256 px old
default's is printed beside it. With --pastiche, the pastiche package runs as its command
line does by default (1000 L-BFGS steps at about 500² pixels) and its picture, resized to
512 px, is scored the same way. Writes results/time_to_picture.json and a side-by-side
picture, results/time_to_picture.png. `python -m benchmarks --only picture` runs it too.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Sequence

from gatys import Transfer, TransferConfig
from gatys.device import device_name, resolve_device, resolve_precision
from gatys.images import as_image, resize, to_pil
from gatys.report import labelled_grid

from . import tables

from .machine import describe
from .precision_check import CONTENTS, STYLES
from .measure import ROOT

IMAGES = ROOT / "examples" / "images"
RESULTS = ROOT / "benchmarks" / "results"
OLD_DEFAULT = dict(scales=(512,), iterations=500, tolerance=0.0)
OLD_256 = dict(scales=(256,), iterations=500, tolerance=0.0)
FINAL_SIZE = 512
PASTICHE_STEPS = 1000         # pastiche's command-line defaults: --num-steps 1000,
PASTICHE_PIXELS = 500 ** 2    # --size-pixels 500², L-BFGS from the content
PAIRS = [(IMAGES / c, IMAGES / s) for c in CONTENTS for s in STYLES]


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
    final = TransferConfig(scales=(FINAL_SIZE,))  # one objective for every schedule: the final scale's, float32
    objective = transfer.score(result.image, content, style, config=final.replace(precision="fp32"))["total"]
    return {"settings": {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()},
            "seconds": seconds, "objective": objective,
            "evaluations": result.timings["evaluations"],
            "stopped_because": [scale.get("stopped_because") for scale in result.trace],
            "style_left": style_left(transfer, result.image, content, style, config), "image": result.to_pil()}


def pastiche_at_defaults(content: Path, style: Path, transfer: Transfer, steps: int = PASTICHE_STEPS,
                         pixels: int = PASTICHE_PIXELS, device: str = "auto", final_size: int = FINAL_SIZE) -> dict:
    """The pastiche package as its command line runs by default (L-BFGS from the content, about
    500² pixels, 1000 steps), timed, its picture scored like gatys's (at final_size, float32)."""
    import torch
    from pastiche.pastiche import PasticheArtist, save_image

    target = resolve_device(device)
    started = time.perf_counter()
    artist = PasticheArtist(str(content), [str(style)], device=str(target), size_pixels=pixels)
    for _ in range(steps):
        artist.draw()
    if target.type == "cuda":
        torch.cuda.synchronize(target)
    seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        save_image(artist.pastiche, Path(folder) / "pastiche.png")
        picture = as_image(Path(folder) / "pastiche.png")
    picture = resize(picture, final_size)
    final = TransferConfig(scales=(final_size,), precision="fp32")
    return {"settings": {"steps": steps, "size_pixels": pixels, "shape": list(artist.content_size)},
            "seconds": seconds, "objective": transfer.score(picture, content, style, config=final)["total"],
            "style_left": style_left(transfer, picture, content, style, final), "image": to_pil(picture)}


def run(pairs: Sequence[tuple[Path, Path]], candidate: str = "default", at_256: bool = True,
        pastiche_steps: int | None = None, out: Path | None = None, echo: bool = True,
        precision: str = "auto") -> dict:
    """Each pair under the old default, the candidate (and the old default at 256 px, and pastiche
    at its defaults for `pastiche_steps`), every gatys run in `precision`; writes the JSON and the
    side-by-side picture to `out`."""
    device = resolve_device("auto")
    transfer = Transfer()
    rows, pictures = [], []
    for content, style in pairs:
        old = measure(transfer, content, style, dict(OLD_DEFAULT, precision=precision))
        new = measure(transfer, content, style, dict(parse_candidate(candidate), precision=precision))
        small = measure(transfer, content, style, dict(OLD_256, precision=precision)) if at_256 else None
        theirs = pastiche_at_defaults(content, style, transfer, pastiche_steps) if pastiche_steps else None
        pictures.append([measured.pop("image") for measured in (old, new, small, theirs) if measured is not None])
        rows.append({"content": content.name, "style": style.name, "old": old, "new": new, "old_256": small,
                     "pastiche": theirs})
        if echo:
            print(line(rows[-1]), flush=True)
    machine = {"device": device_name(device), "precision": resolve_precision(precision, device),
               "cpu_flags": describe(device)["cpu_flags"]}
    result = {"machine": machine, "candidate": candidate, "pairs": rows}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        labels = ["old default: 512 px, 500 evaluations", f"new: {candidate}"] + \
            (["old default at 256 px"] if at_256 else []) + (["pastiche at its defaults"] if pastiche_steps else [])
        sheet = labelled_grid(pictures, row_labels=[f"{r['content']} × {r['style']}" for r in rows],
                              column_labels=labels, cell=256)
        sheet.save(out.with_suffix(".png"))
    return result


def line(row: dict) -> str:
    """One pair's numbers in a line."""
    old, new, small, theirs = row["old"], row["new"], row["old_256"], row["pastiche"]
    at_256 = f", old at 256 px {small['style_left']:.3f}" if small else ""
    pastiche = (f"   pastiche {theirs['seconds']:6.1f} s {theirs['objective']:.4f}, style left "
                f"{theirs['style_left']:.3f}") if theirs else ""
    return (f"{row['content']:14} {row['style']:18} old {old['seconds']:6.1f} s {old['objective']:.4f}   "
            f"new {new['seconds']:6.1f} s {new['objective']:.4f} ({new['seconds'] / old['seconds']:.2f}× the time, "
            f"objective {new['objective'] / old['objective'] - 1:+.2%})   style left: new {new['style_left']:.3f}, "
            f"old {old['style_left']:.3f}{at_256}   {new['stopped_because']}{pastiche}")


def table(result: dict) -> str:
    """The pairs as a table: seconds, the final-scale objective and the style left, per schedule."""
    rows = []
    for row in result["pairs"]:
        old, new, theirs = row["old"], row["new"], row["pastiche"]
        rows.append([f"{row['content']} × {row['style']}", f"{old['seconds']:.1f}", f"{new['seconds']:.1f}",
                     f"{new['seconds'] / old['seconds']:.2f}", f"{old['objective']:.4g}", f"{new['objective']:.4g}",
                     f"{new['objective'] / old['objective'] - 1:+.1%}",
                     f"{theirs['seconds']:.1f}" if theirs else "–", f"{theirs['objective']:.4g}" if theirs else "–"])
    machine = result["machine"]
    return tables.render(f"Time to a finished picture at 512 px ({machine['device']}, {machine['precision']})",
                         ["pair", "old s", "new s", "new/old", "old objective", "new objective", "Δ objective",
                          "pastiche s", "pastiche objective"], rows,
                         ["old: one scale, 500 evaluations; new: " + result["candidate"] + "; objective: the "
                          "final scale's, float32, the same for every picture (lower is better)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", default="default", help="scales:iterations, or 'default'")
    parser.add_argument("--pairs", type=int, default=4, help="how many of the four sample pairs")
    parser.add_argument("--first", type=int, default=1, help="the first pair to run (1-4), to go on where a run stopped")
    parser.add_argument("--no-256", dest="at_256", action="store_false",
                        help="leave out the old default at 256 px (the stylisation reference, a third run per pair)")
    parser.add_argument("--pastiche", type=int, nargs="?", const=PASTICHE_STEPS, default=None, metavar="STEPS",
                        help=f"also run pastiche at its defaults ({PASTICHE_STEPS} steps unless given)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="the gatys runs' precision (the scores are float32 whatever it is)")
    parser.add_argument("--out", type=Path, default=RESULTS / "time_to_picture.json")
    args = parser.parse_args()
    result = run(PAIRS[args.first - 1 : args.first - 1 + args.pairs], args.candidate, args.at_256, args.pastiche,
                 args.out, precision=args.precision)
    print(table(result))


if __name__ == "__main__":
    main()
