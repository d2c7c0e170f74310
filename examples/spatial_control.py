"""The README's spatial-control picture: chicago's sky in Starry Night's manner, the city in Seurat's.

    python examples/make_masks.py          # the two masks (already in examples/images/masks/)
    python examples/spatial_control.py     # runs the transfer (512 px, default schedule), writes masks.png
    python examples/spatial_control.py --figure-only   # redraws masks.png from chicago_two_styles.png

The same as `gatys transfer chicago.jpg starry_night.jpg seurat_grande_jatte_study.jpg --masks
chicago_sky.png,chicago_city.png` (docs/masks.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageOps

import gatys
from gatys.report import labelled_grid

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
CONTENT = IMAGES / "chicago.jpg"
STYLES = (IMAGES / "starry_night.jpg", IMAGES / "seurat_grande_jatte_study.jpg")
MASKS = (IMAGES / "masks" / "chicago_sky.png", IMAGES / "masks" / "chicago_city.png")


def main() -> None:
    result = gatys.Transfer(gatys.TransferConfig(masks=tuple(map(str, MASKS)))).run(CONTENT, list(STYLES))
    result.to_pil().save(HERE / "chicago_two_styles.png")
    draw(result.to_pil())
    print(f"{result.timings['total_seconds']:.1f} s on {result.device}, {result.precision}")


def draw(result: Image.Image) -> None:
    """Content and masks above, the styles and the result below."""
    framed = [ImageOps.expand(Image.open(path).convert("RGB"), border=3, fill="grey") for path in MASKS]
    rows = [[Image.open(CONTENT).convert("RGB"), *framed],
            [*(Image.open(path).convert("RGB") for path in STYLES), result]]
    labels = ["content / style 1 (the sky)", "mask 1: the sky / style 2 (the city)", "mask 2: the city / result"]
    labelled_grid(rows, row_labels=["content and masks", "styles and result"], column_labels=labels,
                  cell=300).save(HERE / "masks.png", optimize=True)


if __name__ == "__main__":
    if "--figure-only" in sys.argv:
        draw(Image.open(HERE / "chicago_two_styles.png").convert("RGB"))
    else:
        main()
