"""Stylise one content with one style under every registered style loss, at default weights.

One Transfer loads the network once and caches the style's features across the runs.
Writes one PNG per loss and a contact sheet (content, style, then one tile per loss).

    python examples/compare_losses.py [--size 256] [--iterations 200] [--out examples/compare]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

import gatys
import losses

HERE = Path(__file__).resolve().parent
# Exact Gaussian MMD is O(M²) per evaluation: subsample positions so it runs on a CPU.
SPECS = {name: name for name in losses.available()} | {"mmd-gaussian": "mmd-gaussian:samples=4096"}


def contact_sheet(tiles: list[tuple[str, Image.Image]], height: int) -> Image.Image:
    scaled = [(label, tile.resize((round(tile.width * height / tile.height), height))) for label, tile in tiles]
    sheet = Image.new("RGB", (sum(tile.width for _, tile in scaled), height + 16), "white")
    x = 0
    for label, tile in scaled:
        sheet.paste(tile, (x, 16))
        ImageDraw.Draw(sheet).text((x + 3, 2), label, fill="black")
        x += tile.width
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", default=HERE / "images" / "chelsea.png")
    parser.add_argument("--style", default=HERE / "images" / "starry_night.jpg")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--out", type=Path, default=HERE / "compare")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    transfer = gatys.Transfer(size=args.size, octaves=1, iterations=args.iterations, tolerance=0.0)
    tiles = [("content", Image.open(args.content).convert("RGB")), ("style", Image.open(args.style).convert("RGB"))]
    for name, spec in SPECS.items():
        result = transfer.run(args.content, args.style, style_losses=(spec,))
        image = result.to_pil()
        gatys.save_image(image, args.out / f"{name}.png")
        seconds = result.timings["seconds_per_evaluation"][0]
        print(f"{name:<20} {seconds:.3f} s/evaluation  final {result.final_losses}", flush=True)
        tiles.append((name, image))
    contact_sheet(tiles, 192).save(args.out / "sheet.png")


if __name__ == "__main__":
    main()
