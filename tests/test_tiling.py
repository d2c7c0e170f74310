"""Tiled evaluation: tiles cover the image on the pooling grid, the halo makes their features exact, and the
tiled objective and its pixel gradient equal the untiled ones (float64 to 1e-10, float32 to rounding)."""
from __future__ import annotations

import pytest
import torch

import losses
from gatys import TransferConfig
from gatys.errors import GatysError
from gatys.masks import layer_weights
from gatys.memory import parse_bytes, tile_shape, transfer_bytes
from gatys.objective import Objective, StyleTerm, divide_features
from gatys.tiling import TiledObjective, downsampling, halo_for, plan_tiles, receptive_radius
from gatys.vgg import load_vgg

SHALLOW = ("relu1_1", "relu2_1", "relu3_1")  # halo 16 px: cheap enough for many cases in float64
TILEABLE = ["gram", "moments", "mmd-linear", "mmd-poly:c=1", "w2"]


@pytest.fixture(scope="module")
def network64():
    return load_vgg("caffe").double()


def images(height, width, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, height, width, generator=generator, dtype=torch.float64) for _ in range(3)]


def objective64(network, spec, layers, content, style, content_layer="relu3_1", masks=None):
    """The engine's objective built by hand in float64: layer scales, targets, content, TV."""
    with torch.no_grad():
        style_feats = network(style, layers)
        content_target = network(content, [content_layer])[content_layer]
    scales = {layer: style_feats[layer].square().mean().sqrt().item() for layer in layers}
    scaled = {layer: divide_features(style_feats[layer], scales[layer]) for layer in layers}
    loss = losses.create(spec)
    if masks is None:
        term = StyleTerm.build(loss, layers, [scaled], [1.0])
    else:
        weights = [layer_weights(mask, layers) for mask in masks]
        term = StyleTerm.build_masked(loss, layers, [scaled] * len(masks), [1.0] * len(masks), weights,
                                      [None] * len(masks))
    content_scale = content_target.square().mean().sqrt().item()
    return Objective(lambda x, names: network(x, names), content_layer, content_target, [term], 1.0, 1.0, 1e-3,
                     content_scale=content_scale, style_scales=scales, image_shape=tuple(content.shape[-2:]))


def value_and_gradient(objective, x):
    x = x.clone().requires_grad_(True)
    if isinstance(objective, TiledObjective):
        total, parts = objective.evaluate(x)
    else:
        total, parts = objective(x)
        total.backward()
    return total.item(), {name: value.item() for name, value in parts.items()}, x.grad


# -- the grid and the halo -----------------------------------------------------------------


def test_receptive_radius_and_grid_of_vgg19_layers():
    assert receptive_radius("relu1_1") == 1 and receptive_radius("relu1_2") == 2
    assert receptive_radius("relu2_1") == 2 + 1 + 2  # pool1 (1 px) then a conv at jump 2
    assert receptive_radius("relu5_1") == 85 and receptive_radius("relu4_2") == 45
    assert downsampling("relu5_1") == 16 and downsampling("relu1_2") == 1
    assert receptive_radius("relu3_1") == 5 + 2 + 2 + 4  # conv2_2, pool2, then conv3_1 at jump 4
    assert halo_for(["relu1_1", "relu5_1"]) == (96, 16) and halo_for(SHALLOW) == (16, 4)


@pytest.mark.parametrize("height, width, shape", [(70, 53, (16, 16)), (70, 53, (32, 48)), (64, 64, (64, 20)),
                                                  (37, 91, (12, 40))])
def test_tiles_partition_the_image_on_the_grid(height, width, shape):
    halo, grid = 16, 4
    tiles = plan_tiles(height, width, shape, halo, grid)
    covered = torch.zeros(height, width, dtype=torch.long)
    for tile in tiles:
        covered[tile.top:tile.bottom, tile.left:tile.right] += 1
        assert tile.top % grid == 0 and tile.left % grid == 0
        assert tile.window == (max(0, tile.top - halo), min(height, tile.bottom + halo),
                               max(0, tile.left - halo), min(width, tile.right + halo))
    assert bool((covered == 1).all())


def test_each_tiles_own_features_equal_the_untiled_ones_and_need_the_halo(network64):
    x = images(120, 100)[0]
    layers = list(SHALLOW)
    with torch.no_grad():
        whole = network64(x, layers)
        halo, grid = halo_for(layers)
        for used_halo, exact in ((halo, True), (0, False)):
            worst = 0.0
            for tile in plan_tiles(120, 100, (32, 32), used_halo, grid):
                top, bottom, left, right = tile.window
                feats = network64(x[..., top:bottom, left:right], layers)
                for layer in layers:
                    factor = downsampling(layer)
                    difference = tile.own(feats[layer], factor) - tile.of_map(whole[layer], factor)
                    worst = max(worst, difference.abs().max().item() / whole[layer].abs().max().item())
            assert (worst < 1e-12) == exact, worst


# -- the objective -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", TILEABLE)
@pytest.mark.parametrize("shape", [(16, 24), (64, 28)])
def test_the_tiled_objective_and_gradient_equal_the_untiled_ones_in_float64(network64, spec, shape):
    content, style, x = images(70, 53, seed=1)
    objective = objective64(network64, spec, SHALLOW, content, style)
    total, parts, gradient = value_and_gradient(objective, x)
    tiled = TiledObjective(objective, shape)
    assert len(tiled.tiles) > 2
    tiled_total, tiled_parts, tiled_gradient = value_and_gradient(tiled, x)
    assert tiled_total == pytest.approx(total, rel=1e-10)
    for name in parts:
        assert tiled_parts[name] == pytest.approx(parts[name], rel=1e-10)
    torch.testing.assert_close(tiled_gradient, gradient, rtol=1e-10, atol=1e-10 * gradient.abs().max().item())


def test_the_default_layers_with_relu5_1s_halo_tile_exactly(network64):
    """relu1_1–relu5_1 and relu4_2's content: a 96 px halo, tiles smaller than the image with it."""
    content, style, x = images(224, 192, seed=2)
    objective = objective64(network64, "gram", ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                            content, style, content_layer="relu4_2")
    tiled = TiledObjective(objective, (112, 96))
    assert len(tiled.tiles) == 4 and all(t.window[1] - t.window[0] < 224 for t in tiled.tiles)
    total, _, gradient = value_and_gradient(objective, x)
    tiled_total, _, tiled_gradient = value_and_gradient(tiled, x)
    assert tiled_total == pytest.approx(total, rel=1e-10)
    torch.testing.assert_close(tiled_gradient, gradient, rtol=1e-10, atol=1e-10 * gradient.abs().max().item())


def test_masks_tile_exactly(network64):
    content, style, x = images(64, 72, seed=3)
    left = torch.zeros(1, 1, 64, 72, dtype=torch.float64)
    left[..., :30] = 1
    soft = torch.rand(1, 1, 64, 72, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for spec in ("gram", "moments", "w2"):
        objective = objective64(network64, spec, SHALLOW, content, style, masks=[left, soft])
        total, _, gradient = value_and_gradient(objective, x)
        tiled_total, _, tiled_gradient = value_and_gradient(TiledObjective(objective, (20, 24)), x)
        assert tiled_total == pytest.approx(total, rel=1e-10)
        torch.testing.assert_close(tiled_gradient, gradient, rtol=1e-10, atol=1e-10 * gradient.abs().max().item())


def test_float32_tiles_agree_to_rounding(transfer, content_path, style_path):
    """float32 sums in another order: value to 1e-5 and gradient to 1e-4 of its largest entry (a sum of ~10⁴
    float32 terms is good to about √n·ε ≈ 1e-5 relative)."""
    objective = transfer.objective(content_path, style_path, size=96, config=TransferConfig(
        size=96, precision="fp32", device="cpu", style_losses=("gram",)))
    x = torch.rand(1, 3, *objective.image_shape, generator=torch.Generator().manual_seed(5))
    total, _, gradient = value_and_gradient(objective, x)
    tiled_total, _, tiled_gradient = value_and_gradient(TiledObjective(objective, (32, 32)), x)
    assert tiled_total == pytest.approx(total, rel=1e-5)
    assert (tiled_gradient - gradient).abs().max() <= 1e-4 * gradient.abs().max()


@pytest.mark.parametrize("spec", ["sliced-wasserstein", "mmd-gaussian", "mmd-poly:d=3"])
def test_a_loss_without_an_exact_tiled_form_is_refused(network64, spec):
    content, style, _ = images(40, 40)
    objective = objective64(network64, spec, ("relu1_1",), content, style)
    with pytest.raises(GatysError, match="cannot be evaluated in tiles exactly"):
        TiledObjective(objective, (16, 16))


# -- the budget ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [("2GB", 2 * 10**9), ("8GiB", 8 * 2**30), ("512MB", 512 * 10**6),
                                            ("1.5 GiB", 3 * 2**29), ("4096", 4096)])
def test_sizes_read_as_users_write_them(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "8 GiBs", "-2GB", "0MB"])
def test_a_size_that_is_not_one_is_a_clear_error(text):
    with pytest.raises(GatysError, match="max-memory: cannot read"):
        parse_bytes(text)


def test_the_budget_tiles_only_what_does_not_fit_and_refuses_what_never_can():
    whole = transfer_bytes(1365, 2048, "relu5_1", 80)
    assert tile_shape(1365, 2048, "relu5_1", 80, whole, 96, 16) is None
    shape = tile_shape(1365, 2048, "relu5_1", 80, whole // 2, 96, 16)
    assert shape is not None and shape[0] % 16 == 0 and shape[1] % 16 == 0
    with pytest.raises(GatysError, match="does not fit in .* even in tiles"):
        tile_shape(1365, 2048, "relu5_1", 80, 2**30, 96, 16)


def test_a_run_over_budget_is_tiled_and_gives_the_untiled_picture(transfer, content_path, style_path):
    config = TransferConfig(size=64, iterations=4, precision="fp32", device="cpu", style_losses=("gram",),
                            style_layers=SHALLOW, content_layer="relu2_2")  # halo 16 px: tiles smaller than 64 px
    plain = transfer.run(content_path, style_path, config=config)
    budget = transfer_bytes(48, 64, "relu3_1", 4) - 1  # one byte short of the whole evaluation
    tiled = transfer.run(content_path, style_path, config=config.replace(max_memory=str(budget)))
    assert "tiling" not in plain.trace[-1] and tiled.trace[-1]["tiling"]["tiles"] > 1
    torch.testing.assert_close(tiled.image, plain.image, rtol=0, atol=2e-3)
