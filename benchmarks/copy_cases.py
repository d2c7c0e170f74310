"""Constructed cases for the copy score: where the truth is known, which threshold separates copied from clean.

For each portrait style and each content (both from examples/images, the output at 256 px on the long
side) the script builds pictures that a transfer could have made, and prints both metrics for each:

  texture   the style's brushwork without its objects: the style at the output's size cut into tiles of
            1/32 of the long side and shuffled (colour and local texture of the style, no object of it);
            the tiles are smaller than the blocks the score compares (1/12 of the short side), else a
            tile would itself be a copy of a piece of the style
  clean     the texture blended half and half with the content (the layout of the content, too)
  pasted    clean, with the style's face pasted in unchanged, in the upper left (in the sky)
  scaled    the face resized by the geometric mean of the two searched style scales around 0.75, as far
            from both as a copy can be (0.749 = 2^(-5/12): 5.9 % off each), pasted lower right
  faded     the face blended 60 / 40 with the clean picture, a copy half merged into it

Every face here is a rigid copy. A transfer's own copies are re-synthesised: the face is rebuilt from the
style's features, distorted and sometimes flipped, and the score, which matches rigid patches, can miss them
(Matisse's face in the sailboat's sky, benchmarks/results/quality/512/*current.png, scores about 0.2).

The suggested threshold is the midpoint, in linear space, between the highest clean score (texture or
clean) and the lowest score of a picture with a face in it; the margin either side is printed with it.
Linear, not log: the clean scores are a floor of chance matches and the copies fall from 1 as they are
faded or rescaled, both by amounts rather than by factors, and a linear midpoint leaves the same margin
on both sides (the log midpoint, also printed, sits lower, nearer the clean cases).

    python -m benchmarks.copy_cases [--images examples/images] [--size 256]

Two to four minutes on two shared cores (40 searches).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from benchmarks.tables import render
from gatys.images import load_image, resize
from gatys.metrics import COPY_THRESHOLD, content_fidelity, find_copied_object, luminance_ssim
from gatys.metrics.copying import STYLE_SCALES

IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
# The face (and what is glued to it) in each style, (top, left, height, width) as fractions of the picture.
FACES = {
    "vermeer_pearl_earring.jpg": (0.20, 0.27, 0.42, 0.40),
    "vangogh_self_portrait_1889.jpg": (0.30, 0.27, 0.55, 0.39),
    "woman-with-hat-matisse.jpg": (0.06, 0.21, 0.53, 0.70),
    "delaunay_portrait_metzinger.jpg": (0.23, 0.31, 0.43, 0.47),
}
CONTENTS = ("sailboat.jpg", "chicago.jpg")
TILES = 32  # tiles along the long side of the shuffled texture
FADE = 0.6
CLEAN = ("texture", "clean")  # the cases without a copied face


def shuffled_tiles(style: torch.Tensor, shape: tuple[int, int], tile: int, seed: int = 0) -> torch.Tensor:
    """The style's colours and local texture without its layout: (1, 3, H, W) tiles of `tile` px, shuffled.

    The style is resized to cover `shape`, cut into whole tiles, and the tiles put back in a random order;
    the rest of the picture (the sides that are not a whole number of tiles) is the style as it is.
    """
    height, width = shape
    cover = max(height / style.shape[-2], width / style.shape[-1])
    scaled = resize(style, shape=(max(height, round(style.shape[-2] * cover)),
                                  max(width, round(style.shape[-1] * cover))))[..., :height, :width]
    rows, cols = height // tile, width // tile
    tiles = scaled[..., :rows * tile, :cols * tile].unfold(2, tile, tile).unfold(3, tile, tile)
    tiles = tiles.reshape(1, 3, rows * cols, tile, tile)
    order = torch.randperm(rows * cols, generator=torch.Generator().manual_seed(seed))
    shuffled = tiles[:, :, order].reshape(1, 3, rows, cols, tile, tile).permute(0, 1, 2, 4, 3, 5)
    texture = scaled.clone()
    texture[..., :rows * tile, :cols * tile] = shuffled.reshape(1, 3, rows * tile, cols * tile)
    return texture


def face_crop(style: torch.Tensor, box: tuple[float, float, float, float], long_side: int,
              scale: float = 1.0) -> torch.Tensor:
    """The face of a style resized to `scale` × `long_side` on its long side, as the engine sizes a style."""
    scaled = resize(style, size=max(1, round(long_side * scale)))
    height, width = scaled.shape[-2:]
    top, left, box_height, box_width = box
    return scaled[..., round(top * height):round((top + box_height) * height),
                  round(left * width):round((left + box_width) * width)]


def paste(picture: torch.Tensor, piece: torch.Tensor, where: str, opacity: float = 1.0) -> torch.Tensor:
    """A copy of `picture` with `piece` over it, 4 % in from the upper-left or lower-right corner."""
    result = picture.clone()
    height, width = piece.shape[-2:]
    height, width = min(height, picture.shape[-2]), min(width, picture.shape[-1])
    margin_y, margin_x = round(0.04 * picture.shape[-2]), round(0.04 * picture.shape[-1])
    top = margin_y if where == "upper left" else max(0, picture.shape[-2] - height - margin_y)
    left = margin_x if where == "upper left" else max(0, picture.shape[-1] - width - margin_x)
    region = result[..., top:top + height, left:left + width]
    region.mul_(1 - opacity).add_(opacity * piece[..., :height, :width])
    return result


def between_scales(near: float = 0.75) -> float:
    """The worst scale for the search: the geometric mean of the two searched style scales around `near`."""
    below = max(scale for scale in STYLE_SCALES if scale <= near)
    above = min(scale for scale in STYLE_SCALES if scale > near)
    return (below * above) ** 0.5


def cases(style: torch.Tensor, face: tuple[float, float, float, float],
          content: torch.Tensor) -> dict[str, torch.Tensor]:
    """The five constructed outputs for one style and content, by name (see the module's docstring)."""
    long_side = max(content.shape[-2:])
    texture = shuffled_tiles(style, tuple(content.shape[-2:]), max(2, long_side // TILES))
    clean = 0.5 * texture + 0.5 * content
    return {
        "texture": texture,
        "clean": clean,
        "pasted": paste(clean, face_crop(style, face, long_side), "upper left"),
        "scaled": paste(clean, face_crop(style, face, long_side, between_scales()), "lower right"),
        "faded": paste(clean, face_crop(style, face, long_side), "upper left", FADE),
    }


def measure(images: Path, size: int) -> list[dict]:
    """Both metrics for every style × content × case, as rows of plain data."""
    rows = []
    for style_name, face in FACES.items():
        style = load_image(images / style_name, size=2 * size)
        for content_name in CONTENTS:
            content = load_image(images / content_name, size=size)
            for case, output in cases(style, face, content).items():
                match = find_copied_object(output, style)
                rows.append({"style": style_name, "content": content_name, "case": case,
                             "copy": match.score, "ncc": match.correlation, "runner_up": match.runner_up,
                             "scale": match.style_scale, "at": match.output_box,
                             "fidelity": content_fidelity(output, content),
                             "ssim": luminance_ssim(output, content)})
    return rows


def suggest(rows: list[dict]) -> tuple[float, float, float]:
    """(threshold, highest clean score, lowest score with a face): the linear midpoint of the two."""
    clean = max(row["copy"] for row in rows if row["case"] in CLEAN)
    copied = min(row["copy"] for row in rows if row["case"] not in CLEAN)
    return (clean + copied) / 2, clean, copied


HEADERS = ["style", "content", "case", "copy", "ncc", "runner-up", "scale", "output box", "fidelity", "ssim"]


def table_rows(rows: list[dict]) -> list[list[str]]:
    """One line of the table per case, in the order of HEADERS."""
    return [[row["style"].split(".")[0], row["content"].split(".")[0], row["case"], f"{row['copy']:.3f}",
             f"{row['ncc']:.3f}", f"{row['runner_up']:.3f}", f"{row['scale']:.2f}", str(row["at"]),
             f"{row['fidelity']:.3f}", f"{row['ssim']:.3f}"] for row in rows]


def notes(rows: list[dict], seconds: float) -> list[str]:
    """What the columns are, and the threshold the cases suggest."""
    threshold, clean, copied = suggest(rows)
    log_midpoint = math.sqrt(max(clean, 1e-6) * max(copied, 1e-6))
    verdict = "" if copied > clean else "  (NOT SEPARATED: the cases overlap)"
    return ["copy: copied_object_score (distinctiveness D); ncc: the best patch's correlation b; runner-up: its "
            "best elsewhere in the style r; scale: the style's at the match; output box: (top, left, h, w)",
            f"highest clean copy score {clean:.3f}; lowest with a face {copied:.3f}; suggested threshold (linear "
            f"midpoint) {threshold:.2f}, margin ±{(copied - clean) / 2:.3f} (log midpoint {log_midpoint:.2f}); "
            f"gatys.metrics.COPY_THRESHOLD is {COPY_THRESHOLD}{verdict}",
            f"{len(rows)} cases in {seconds:.0f} s"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.copy_cases", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder with the sample styles and contents")
    parser.add_argument("--size", type=int, default=256, help="long side of the constructed outputs, px")
    options = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    started = time.perf_counter()
    rows = measure(options.images, options.size)
    print(render("copy score and content fidelity on constructed outputs", HEADERS, table_rows(rows),
                 notes(rows, time.perf_counter() - started)))


if __name__ == "__main__":
    main()
