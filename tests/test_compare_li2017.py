"""The li2017 frame: its settings give, layer by layer, the objective of losses-spec.md §2.4 (Li et al.'s
reference code), checked in float64 on random features against the spec's formulas written out in numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import losses
from gatys import TransferConfig
from gatys.compare.frames import Shapes, frame_config, li2017_specs, li2017_tv_weight
from gatys.errors import GatysError
from gatys.objective import StyleTerm
from losses.content import content_loss
from losses.functional import random_indices
from losses.tv import tv_loss

GAMMA = 5.0  # the balance factor: --style-weight's default in the reference code (1.0 for BN, in run.sh)


def mmd_b(x: np.ndarray, y: np.ndarray, kernel) -> float:
    """Biased MMD² over every pair of rows, by brute force."""
    return kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean()


def linear_time_sum(x: np.ndarray, y: np.ndarray) -> float:
    """Σ_p h_p of the reference code's Gaussian MMD (bandwidth from the sampled pairs), rows in pairing order."""
    n0 = len(x) - len(x) % 2
    x0, x1, y0, y1 = x[0:n0:2], x[1:n0:2], y[0:n0:2], y[1:n0:2]
    d = [((a - b) ** 2).sum(1) for a, b in ((x0, x1), (y0, y1), (x0, y1), (y0, x1))]
    gamma = n0 * 2 / sum(part.sum() for part in d)
    k = [np.exp(-gamma * part) for part in d]
    return float(k[0].sum() + k[1].sum() - k[2].sum() - k[3].sum())


def spec_formula(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """losses-spec.md §2.4, 'effective per-layer objective', with M positions and N channels."""
    positions, channels = x.shape
    if name == "mmd-linear":
        return GAMMA * 2e3 * (positions / 2) / channels * mmd_b(x, y, lambda a, b: a @ b.T)
    if name in ("mmd-poly", "gram"):
        return GAMMA * 0.1 * (positions / 4) / channels**2 * mmd_b(x, y, lambda a, b: (a @ b.T) ** 2)
    if name == "mmd-poly:c=0.5":
        return GAMMA * 0.1 * (positions / 4) / channels**2 * mmd_b(x, y, lambda a, b: (a @ b.T + 0.5) ** 2)
    if name == "moments:eps=0":
        bn = ((x.mean(0) - y.mean(0)) ** 2 + (x.std(0) - y.std(0)) ** 2).sum() / channels
        return 1.0 * 1e3 * (positions / 2) * bn
    assert name == "mmd-gaussian"
    order_x = random_indices(positions, None, 2 * seed).numpy()  # the loss's pairing for its seed
    order_y = random_indices(len(y), None, 2 * seed + 1).numpy()
    pairs = positions // 2
    return GAMMA * 3e14 * (pairs / (2 * channels * positions)) * (linear_time_sum(x[order_x], y[order_y]) / pairs)


@pytest.mark.parametrize("name", ["mmd-linear", "mmd-poly", "gram", "mmd-poly:c=0.5", "moments:eps=0",
                                  "mmd-gaussian"])
@pytest.mark.parametrize("layer, image", [("relu1_1", (6, 8)), ("relu2_1", (13, 16)), ("relu3_1", (20, 30))])
def test_each_layer_s_term_equals_the_spec_s_formula(name, layer, image, generator):
    shapes = Shapes(output=image, style=image)
    (spec,) = li2017_specs(name, shapes, (layer,))
    positions = shapes.positions(layer)
    height = image[0] >> int(layer[4]) - 1
    width = positions // height
    feats = torch.randn(1, 7, height, width, generator=generator, dtype=torch.float64).relu_() * 30
    style = torch.randn(1, 7, height, width, generator=generator, dtype=torch.float64).relu_() * 40
    loss = losses.create(spec)
    term = StyleTerm.build(loss, [layer], [{layer: style}], [1.0])   # as the engine's objective applies it
    value = float(term.value({layer: feats}, {}))
    x, y = (f[0].flatten(1).T.numpy() for f in (feats, style))
    assert value == pytest.approx(spec_formula(name, x, y, loss.seed if hasattr(loss, "seed") else 0), rel=1e-10)


def test_the_gaussian_spec_is_the_linear_time_estimator_with_the_pairs_bandwidth():
    (spec,) = li2017_specs("mmd-gaussian", Shapes((8, 8), (8, 8)), ("relu1_1",))
    name, params = losses.parse_spec(spec)
    assert params["sigma"] == "li2017" and params["estimator"] == "linear" and params["layers"] == "relu1_1"
    assert params["weight"] == pytest.approx(GAMMA * 3e14 * 32 / (2 * 64))


def test_bn_moments_keep_their_eps_by_default(generator):
    (spec,) = li2017_specs("moments", Shapes((6, 6), (6, 6)), ("relu1_1",))
    assert losses.create(spec).eps == 1e-5


def test_the_content_term_is_the_sum_of_squares_and_tv_the_reference_s_laplacian(generator):
    config = TransferConfig(size=64, init="noise")
    shapes = Shapes(output=(64, 64), style=(64, 48))
    framed = frame_config("li2017", config, "gram", shapes)
    assert framed.normalize_layers is False
    assert len(framed.style_losses) == 5  # one spec per layer
    feats = torch.randn(1, 512, 8, 8, generator=generator, dtype=torch.float64)
    target = torch.randn(1, 512, 8, 8, generator=generator, dtype=torch.float64)
    assert framed.content_weight * float(content_loss(feats, target)) == pytest.approx(
        float((feats - target).square().sum()), rel=1e-12)
    image = torch.rand(1, 3, 64, 64, generator=generator, dtype=torch.float64)
    pixels = image * 256  # the reference code's 0–256 units
    edges = (pixels[..., 1:] - pixels[..., :-1]).square().sum() + (pixels[..., 1:, :] - pixels[..., :-1, :]).square().sum()
    assert framed.tv_weight * float(tv_loss(image)) == pytest.approx(1e-2 / 16 * float(edges), rel=1e-12)
    assert li2017_tv_weight(1e-2, shapes) == framed.tv_weight


def test_the_frame_refuses_what_the_reference_code_does_not_define():
    shapes = Shapes((16, 16), (16, 16))
    with pytest.raises(GatysError, match="w2"):
        li2017_specs("w2", shapes, ("relu1_1",))
    with pytest.raises(GatysError, match="d = 2"):
        li2017_specs("mmd-poly:d=3", shapes, ("relu1_1",))
    with pytest.raises(GatysError, match="sets weight"):
        li2017_specs("gram:weight=3", shapes, ("relu1_1",))
    with pytest.raises(GatysError, match="one scale"):
        frame_config("li2017", TransferConfig(size=64, octaves=2), "gram", shapes)
