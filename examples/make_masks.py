"""The masks of the README's spatial-control example: the sky of chicago.jpg, and the rest.

    python examples/make_masks.py        # writes examples/images/masks/chicago_sky.png and chicago_city.png

The sky is the part of the picture connected to its top edge that is blue or bright and grey
(clouds), holes filled and two pixels of speckle opened away; the city is everything else, the
water included. Any painting program makes such masks as well: white where a style goes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

IMAGES = Path(__file__).resolve().parent / "images"


def sky_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean (H, W): blue-or-cloud pixels connected to the top row."""
    red, blue = rgb[..., 0], rgb[..., 2]
    brightness, saturation = rgb.mean(-1), rgb.max(-1) - rgb.min(-1)
    candidate = ((blue > red + 0.05) & (brightness > 0.45)) | ((brightness > 0.7) & (saturation < 0.15))
    labels, _ = ndimage.label(candidate)
    sky = np.isin(labels, [label for label in np.unique(labels[0]) if label])
    return ndimage.binary_opening(ndimage.binary_fill_holes(sky), iterations=2)


def main() -> None:
    rgb = np.asarray(Image.open(IMAGES / "chicago.jpg").convert("RGB"), dtype=np.float32) / 255
    sky = sky_mask(rgb)
    folder = IMAGES / "masks"
    folder.mkdir(exist_ok=True)
    Image.fromarray((sky * 255).astype(np.uint8)).save(folder / "chicago_sky.png", optimize=True)
    Image.fromarray((~sky * 255).astype(np.uint8)).save(folder / "chicago_city.png", optimize=True)
    print(f"sky: {sky.mean():.1%} of the picture; masks in {folder}")


if __name__ == "__main__":
    main()
