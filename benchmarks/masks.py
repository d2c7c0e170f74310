"""Spatial control measured: did each region take its own style, and which mask propagation keeps it there (issue 31).

    python -m benchmarks.masks                         # chicago: sky × Starry Night, city × Seurat, 512 px
    python -m benchmarks.masks --size 256 --runs area,blend --losses gram,moments

Two styles in two regions (examples/images/masks/: the sky of chicago.jpg and the rest), one run per
mask propagation (area, all, inside) and, for reference, the unmasked blend of the two styles. Each
picture is then scored per region: the Gram style term of the region's positions against its own
style and against the other style (the masked objective itself, scored with `inside` masks at
relu1_1–relu3_1, so only positions whose receptive field lies inside the region count), in the
region's interior and in a band of BAND px along the boundary, where the propagations differ.
"own / other" below 1 means the region is closer to its own style than to the other one; the blend
is the baseline, close to 1 when both styles are everywhere. With --losses, runs with area masks
for each listed loss are scored the same way. Results: benchmarks/results/masks-<cpu>.json;
pictures in benchmarks/results/masks/.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from gatys import Transfer, TransferConfig
from gatys.device import resolve_device

from . import tables
from .measure import ROOT
from .quality import cpu_label

IMAGES = ROOT / "examples" / "images"
MASKS = IMAGES / "masks"
CONTENT = IMAGES / "chicago.jpg"
STYLES = (IMAGES / "starry_night.jpg", IMAGES / "seurat_grande_jatte_study.jpg")
REGIONS = (MASKS / "chicago_sky.png", MASKS / "chicago_city.png")
NAMES = ("sky", "city")
SCORE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")
BAND = 24  # px on each side of the boundary, at the content's resolution
RESULTS = ROOT / "benchmarks" / "results"


def run_settings(name: str, size: int, loss: str = "gram") -> dict:
    """The TransferConfig settings of one run: masked with a propagation, or the unmasked blend."""
    if name == "blend":
        return dict(size=size, style_losses=(loss,))
    return dict(size=size, style_losses=(loss,), masks=tuple(map(str, REGIONS)), mask_propagation=name)


def bands(folder: Path) -> list[Path]:
    """Per region, its positions within BAND px of the other region, as mask files."""
    paths = []
    regions = [np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255 > 0.5 for path in REGIONS]
    for index, region in enumerate(regions):
        other = regions[1 - index]
        band = region & ndimage.binary_dilation(other, iterations=BAND)
        path = folder / f"band_{NAMES[index]}.png"
        Image.fromarray((band * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def region_terms(transfer: Transfer, image, size: int, where: Path, style: Path) -> float:
    """The Gram style term of the picture's positions in `where` against `style` (inside masks, fine layers)."""
    config = TransferConfig(size=size, precision="fp32", masks=(str(where),), mask_propagation="inside",
                            style_layers=SCORE_LAYERS)
    return transfer.score(image, CONTENT, style, config=config)["style"]


def score(transfer: Transfer, image, size: int, band_paths: list[Path]) -> dict:
    """Per region and place (interior, band): own-style term, other-style term and their ratio."""
    scores = {}
    for index, name in enumerate(NAMES):
        for place, where in (("interior", REGIONS[index]), ("band", band_paths[index])):
            own = region_terms(transfer, image, size, where, STYLES[index])
            other = region_terms(transfer, image, size, where, STYLES[1 - index])
            scores[f"{name} {place}"] = {"own": own, "other": other, "ratio": own / other}
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", default="area,all,inside,blend")
    parser.add_argument("--losses", default="", help="also runs with area masks for these losses, e.g. moments,w2")
    options = parser.parse_args(argv)
    out = RESULTS / f"masks-{cpu_label(resolve_device('auto'))}.json"
    report = json.loads(out.read_text()) if out.exists() else {}
    at_size = report.setdefault(str(options.size), {})
    runs = [(name, "gram") for name in options.runs.split(",") if name]
    runs += [("area", loss) for loss in options.losses.split(",") if loss and loss != "gram"]
    transfer = Transfer()
    pictures = RESULTS / "masks" / str(options.size)
    pictures.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        band_paths = bands(Path(folder))
        for name, loss in runs:
            result = transfer.run(CONTENT, list(STYLES), config=TransferConfig(**run_settings(name, options.size, loss)))
            key = name if loss == "gram" else f"{name} {loss}"
            picture = pictures / f"{key.replace(' ', '_')}.png"
            result.to_pil().save(picture)
            at_size[key] = {"scores": score(transfer, result.image, options.size, band_paths),
                            "seconds": result.timings["total_seconds"], "picture": str(picture.relative_to(ROOT))}
            out.write_text(json.dumps(report, indent=1) + "\n")
            print(key, {place: round(value["ratio"], 3) for place, value in at_size[key]["scores"].items()},
                  flush=True)
    print(table(report, options.size))
    return 0


def table(report: dict, size: int) -> str:
    """Runs × (region, place): own-style term / other-style term."""
    at_size = report.get(str(size), {})
    places = [f"{name} {place}" for name in NAMES for place in ("interior", "band")]
    rows = [(key, *(f"{measured['scores'][place]['ratio']:.3f}" for place in places))
            for key, measured in at_size.items()]
    return tables.render(f"own-style / other-style Gram term per region, {size} px (below 1: its own style)",
                         ("run", *places), rows)


if __name__ == "__main__":
    raise SystemExit(main())
