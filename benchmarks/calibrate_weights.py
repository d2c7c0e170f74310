"""Default style-loss weights by measurement: every loss pulls on the pixels as hard as gram.

For each registered loss L with weight 1 and each content × style pair, the gradient norm

    g = ‖∇_x Σ_l L(F_l(x), T_l(style))‖₂   at x = the content image, l ∈ relu1_1 … relu5_1

is measured on the caffe VGG19 with the engine's layer normalisation (features of layer l,
output and style alike, divided by the style's RMS activation there); its geometric mean over the pairs is the loss's gradient
scale. The weight that gives a loss gram's scale at gram's current default weight is

    w = w_gram · g_gram / g_L

printed to two significant figures, to be copied into the class's `default_weight` by hand.
Images: the sample contents and styles in examples/images, longest side resized to --size.

    python benchmarks/calibrate_weights.py [--size 256] [--losses gram,w2,...]

Exact Gaussian MMD dominates the run time (about a minute per pair at 256 px on 2 cores).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import losses
from gatys.vgg import load_vgg

IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
CONTENTS = ("astronaut.png", "chelsea.png", "coffee.png")
STYLES = ("starry_night.jpg", "the_scream.jpg", "woman-with-hat-matisse.jpg")
LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def load(path: Path, size: int) -> torch.Tensor:
    """RGB in [0, 1], (1, 3, H, W), longest side resized to size."""
    image = Image.open(path).convert("RGB")
    scale = size / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float() / 255


def gradient_norms(names: list[str], size: int, images: Path) -> dict[str, list[float]]:
    """Per loss, the pixel-gradient norm for every content × style pair."""
    network = load_vgg()
    seconds = dict.fromkeys(names, 0.0)
    loss_of = {name: losses.create(name, weight=1.0) for name in names}
    targets = {}  # (loss, style) → {layer: target}, made once
    scales = {}  # style → {layer: RMS activation}, as gatys.engine normalises
    with torch.no_grad():
        for style_name in STYLES:
            style = network(load(images / style_name, size), LAYERS)
            scales[style_name] = {layer: style[layer].square().mean().sqrt() for layer in LAYERS}
            style = {layer: style[layer] / scales[style_name][layer] for layer in LAYERS}
            for name, loss in loss_of.items():
                start = time.perf_counter()
                targets[name, style_name] = {layer: loss.target(style[layer]) for layer in LAYERS}
                seconds[name] += time.perf_counter() - start
    norms: dict[str, list[float]] = {name: [] for name in names}
    for content_name in CONTENTS:
        x = load(images / content_name, size).requires_grad_(True)
        feats = network(x, LAYERS)
        for name, loss in loss_of.items():
            start = time.perf_counter()
            for style_name in STYLES:
                value = sum(loss(feats[layer] / scales[style_name][layer], targets[name, style_name][layer])
                            for layer in LAYERS)
                (grad,) = torch.autograd.grad(value, x, retain_graph=True)
                norms[name].append(grad.norm().item())
            seconds[name] += time.perf_counter() - start
            print(f"  {content_name:<12} {name:<20} {seconds[name]:6.1f} s so far", flush=True)
    return norms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="longest image side in pixels (default 256)")
    parser.add_argument("--losses", default=",".join(losses.available()), help="comma-separated loss names")
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder with the sample images")
    args = parser.parse_args()
    names = [name.strip() for name in args.losses.split(",") if name.strip()]
    if "gram" not in names:
        names.insert(0, "gram")
    torch.manual_seed(0)

    norms = gradient_norms(names, args.size, args.images)
    scale = {name: math.exp(np.mean(np.log(values))) for name, values in norms.items()}
    gram_weight = losses.describe("gram").default_weight
    print(f"\npixel-gradient norm of Σ_l L over {', '.join(LAYERS)} at x = content, weight 1;")
    print(f"{len(CONTENTS)} contents × {len(STYLES)} styles at {args.size} px; gram's default weight {gram_weight:g}\n")
    print("| loss | geometric-mean ‖∇x‖ | min … max over pairs | g_gram/g_L | weight (= gram's pull) | current default |")
    print("|---|---|---|---|---|---|")
    for name in names:
        ratio = scale["gram"] / scale[name]
        print(f"| {name} | {scale[name]:.3g} | {min(norms[name]):.3g} … {max(norms[name]):.3g} | {ratio:.4g} "
              f"| {gram_weight * ratio:.2g} | {losses.describe(name).default_weight:g} |")


if __name__ == "__main__":
    main()
