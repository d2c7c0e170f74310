"""The README's spatial-control picture: chicago's sky in Starry Night's manner, the city in Seurat's.

    python examples/make_masks.py          # the two masks (already in examples/images/masks/)
    python examples/spatial_control.py     # runs the transfer (512 px, default schedule), writes masks.png

The same as `gatys transfer chicago.jpg starry_night.jpg seurat_grande_jatte_study.jpg --masks
chicago_sky.png,chicago_city.png` (docs/masks.md).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

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
    cells = [Image.open(path).convert("RGB") for path in (CONTENT, *MASKS)] + [result.to_pil()] + \
        [Image.open(path).convert("RGB") for path in STYLES]
    labels = ["content", "mask 1: the sky", "mask 2: the city", "result", "style 1", "style 2"]
    labelled_grid([cells], row_labels=[""], column_labels=labels, cell=260).save(HERE / "masks.png", optimize=True)
    print(f"{result.timings['total_seconds']:.1f} s on {result.device}, {result.precision}")


if __name__ == "__main__":
    main()
