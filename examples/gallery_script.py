"""A gallery built in Python: two contents × two styles × two style weights, resumable.

The same as a TOML spec (see gallery.toml), as data: plan it, print the plan, run what is left,
then read the results back from the store.

    python examples/gallery_script.py [--size 64] [--iterations 100] [--out gallery-script] [--backend ray]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import gatys
from gatys.gallery import Gallery

IMAGES = Path(__file__).resolve().parent / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("gallery-script"))
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    gallery = Gallery(
        contents=["chelsea.png", "coffee.png"],
        styles=["starry_night.jpg", "woman-with-hat-matisse.jpg"],
        losses=["moments"],
        defaults={"size": args.size, "iterations": args.iterations},
        variants=[{"name": "gentle", "style-weight": 0.3}, {"name": "strong", "style-weight": 3}],
        root=IMAGES,  # paths and globs are relative to this folder
        name="script",
    )
    print(gallery.plan(args.out).describe())
    summary = gallery.run(args.out, backend=args.backend, progress=not args.quiet)
    for result in gatys.Store(args.out).finished():
        print(result.id, result.manifest["timings"]["total_seconds"].__round__(2), "s", result.image)
    print(f"{summary.done} done now, {summary.skipped} skipped, {summary.failed} failed; "
          f"open {args.out / 'index.html'}")


if __name__ == "__main__":
    main()
