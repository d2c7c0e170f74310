"""The README's first picture: content, style, and the README's main command's result, side by side.

    python examples/before_after.py        # runs the transfer (256 px, default schedule), writes before_after.png
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

import gatys
from gatys.images import to_pil

HERE = Path(__file__).resolve().parent
CONTENT, STYLE = HERE / "images" / "chelsea.png", HERE / "images" / "starry_night.jpg"


def strip(images, height: int = 170, gap: int = 4) -> Image.Image:
    """Pictures side by side at one height, on white."""
    pictures = [to_pil(image) for image in images]
    pictures = [p.resize((round(p.width * height / p.height), height), Image.LANCZOS) for p in pictures]
    sheet = Image.new("RGB", (sum(p.width for p in pictures) + gap * (len(pictures) - 1), height), "white")
    left = 0
    for picture in pictures:
        sheet.paste(picture, (left, 0))
        left += picture.width + gap
    return sheet


def main() -> None:
    result = gatys.Transfer(gatys.TransferConfig(size=256)).run(CONTENT, STYLE)  # as `gatys transfer ... --size 256`
    scales = " then ".join(f"{scale['shape'][1]} px x {count}"
                           for scale, count in zip(result.trace, result.timings["evaluations"]))
    strip([gatys.load_image(CONTENT), gatys.load_image(STYLE), result.image]).save(HERE / "before_after.png")
    print(f"{scales}: {result.timings['total_seconds']:.1f} s on {result.device}, {result.precision}")


if __name__ == "__main__":
    main()
