"""bf16 against float32 on the sample images: equivalent results, judged in float32.

For each content × style pair, one default-settings transfer (`gatys transfer` at the size
and iteration count given) in fp32 and one in bf16. Both final images are then scored by
the same float32 objective, the one Transfer.run builds for that pair in fp32
(Transfer.score): relative differences of the content and style losses, and the
PSNR between the two images (next to the PSNR between the fp32 result and the content image,
which shows how far stylisation moved the pixels). The bf16 objective's own score of the bf16
image is kept too: the error of evaluating in bf16. A grid PNG shows, per pair, the content,
the style, the fp32 and bf16 results and their difference ×4.

The yardstick: a third run, fp32 again, from a content image nudged by 1e-6 (TWIN_NUDGE),
scored the same way. Hundreds of L-BFGS steps amplify any difference, rounding included,
so the fp32 twin's distance from the fp32 result is how far two runs that differ only by
rounding land apart; bf16's distance is to be read against it.

On the CPU a fourth run, fp32 with every conv direct (workload.direct_convolution), shows
whether the Winograd convs of the fp32 path (gatys/fast/winograd.py) move the result further than
rounding does.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image

from gatys import Transfer
from gatys.device import resolve_device
from gatys.images import load_image, resize, to_pil

from . import workload

CONTENTS = ("chelsea.png", "astronaut.png")
STYLES = ("starry_night.jpg", "the_scream.jpg")
TOLERANCE = 0.05  # "within a few per cent"
TWIN_NUDGE = 1e-6  # the fp32 twin's content: the image plus this times uniform noise in [-1, 1]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of two [0, 1] images."""
    error = (a.float() - b.float()).square().mean().item()
    return math.inf if error == 0 else 10 * math.log10(1 / error)


def score(transfer: Transfer, content: Path, style: Path, image: torch.Tensor, precision: str) -> dict[str, float]:
    """The weighted content, style and tv losses of image under the run's objective at `precision`."""
    return transfer.score(image, content, style, precision=precision)


def compare_pair(transfer: Transfer, content: Path, style: Path,
                 iterations: int) -> tuple[dict, tuple[torch.Tensor, ...]]:
    """The comparison's record, and the images a grid row shows (content, style, fp32, bf16)."""
    results = {precision: transfer.run(content, style, precision=precision, iterations=iterations)
               for precision in ("fp32", "bf16")}
    results["fp32 twin"] = transfer.run(_nudged(load_image(content)), style, precision="fp32", iterations=iterations)
    if resolve_device(transfer.config.device).type == "cpu":
        with workload.direct_convolution():
            results["fp32 direct"] = transfer.run(content, style, precision="fp32", iterations=iterations)
    fp32_image, bf16_image = results["fp32"].image, results["bf16"].image
    scores = {precision: score(transfer, content, style, result.image, "fp32") for precision, result in results.items()}
    bf16_self = score(transfer, content, style, bf16_image, "bf16")
    relative = {name: scores["bf16"][name] / scores["fp32"][name] - 1 for name in ("total", "content", "style")}
    twin, direct = ({name: scores[run][name] / scores["fp32"][name] - 1 for name in ("total", "content", "style")}
                    if run in scores else None for run in ("fp32 twin", "fp32 direct"))
    start = resize(load_image(content), shape=tuple(fp32_image.shape[-2:]))
    record = {
        "content": content.name,
        "style": style.name,
        "shape": list(fp32_image.shape[-2:]),
        "iterations": iterations,
        "seconds": {p: r.timings["total_seconds"] for p, r in results.items()},
        "seconds_per_evaluation": {p: r.timings["seconds_per_evaluation"][0] for p, r in results.items()},
        "fp32_scores": scores,
        "bf16_self_score": bf16_self,
        "relative_difference": relative,
        "fp32_twin_relative_difference": twin,
        "psnr_fp32_twin_db": psnr(fp32_image, results["fp32 twin"].image),
        "fp32_direct_relative_difference": direct,
        "psnr_fp32_direct_db": psnr(fp32_image, results["fp32 direct"].image) if direct else None,
        "bf16_evaluation_error": {name: bf16_self[name] / scores["bf16"][name] - 1 for name in ("content", "style")},
        "psnr_fp32_bf16_db": psnr(fp32_image, bf16_image),
        "psnr_fp32_content_db": psnr(fp32_image, start),
        "equivalent": all(abs(relative[name]) <= TOLERANCE for name in ("content", "style")),
    }
    return record, (start, load_image(style), fp32_image, bf16_image)


def _nudged(image: torch.Tensor) -> torch.Tensor:
    """image + TWIN_NUDGE·U[-1, 1] (fixed seed), kept in [0, 1]."""
    noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(0), dtype=image.dtype) * 2 - 1
    return (image + TWIN_NUDGE * noise).clamp(0, 1)


def grid(rows: list[tuple[torch.Tensor, ...]], path: Path) -> None:
    """One row per pair: content | style | fp32 | bf16 | 4·|fp32 − bf16|, all at the result's height."""
    tiles = []
    for start, style, fp32_image, bf16_image in rows:
        height = fp32_image.shape[-2]
        style_small = resize(style, shape=(height, max(1, round(style.shape[-1] * height / style.shape[-2]))))
        difference = ((fp32_image - bf16_image).abs() * 4).clamp(0, 1)
        tiles.append([to_pil(t) for t in (start, style_small, fp32_image, bf16_image, difference)])
    gap = 4
    width = max(sum(tile.width for tile in row) + gap * (len(row) - 1) for row in tiles)
    height = sum(row[0].height for row in tiles) + gap * (len(tiles) - 1)
    canvas = Image.new("RGB", (width, height), "white")
    top = 0
    for row in tiles:
        left = 0
        for tile in row:
            canvas.paste(tile, (left, top))
            left += tile.width + gap
        top += row[0].height + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def run(size: int, iterations: int, device: str = "auto", contents=CONTENTS, styles=STYLES,
        image_path: Path | None = None) -> dict:
    transfer = Transfer(workload.settings(size, "auto", device, iterations))
    compared = [compare_pair(transfer, workload.IMAGES / c, workload.IMAGES / s, iterations)
                for c in contents for s in styles]
    pairs = [record for record, _ in compared]
    if image_path is not None:
        grid([images for _, images in compared], image_path)
    return {"size": size, "iterations": iterations, "tolerance": TOLERANCE, "pairs": pairs,
            "image": str(image_path) if image_path is not None else None,
            "equivalent": all(pair["equivalent"] for pair in pairs)}
