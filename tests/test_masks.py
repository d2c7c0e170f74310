"""Spatial control: masks read and checked, carried to each layer's grid, and through the engine and CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import losses
from gatys import Job, TransferConfig
from gatys.cli import main
from gatys.errors import GatysError
from gatys.masks import layer_weights, load_mask
from gatys.vgg import LAYERS

FAST = dict(size=32, iterations=4, precision="fp32", device="cpu")
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def save_mask(path, array):
    Image.fromarray((np.asarray(array, dtype=np.float64) * 255).round().astype(np.uint8)).save(path)
    return path


def halves(folder, height=36, width=48):
    """Left and right halves of the content fixture's 48×36 frame, as two mask files."""
    left = np.zeros((height, width))
    left[:, : width // 2] = 1
    return save_mask(folder / "left.png", left), save_mask(folder / "right.png", 1 - left)


# -- reaching the layers -------------------------------------------------------------------


def network_shapes(height, width):
    """Each layer's grid as VGG19 makes it: every 2×2 max pooling floors."""
    shapes, shape = {}, (height, width)
    for name in LAYERS:
        if name.startswith("pool"):
            shape = (shape[0] // 2, shape[1] // 2)
        shapes[name] = shape
    return shapes


@pytest.mark.parametrize("propagation", ["area", "all", "inside"])
def test_every_layer_gets_its_grid_on_odd_sides(propagation):
    mask = torch.rand(1, 1, 37, 53)
    weights = layer_weights(mask, STYLE_LAYERS, propagation)
    expected = network_shapes(37, 53)
    assert {layer: tuple(w.shape[-2:]) for layer, w in weights.items()} == {layer: expected[layer] for layer in STYLE_LAYERS}


def test_area_is_the_mean_over_each_pooling_window():
    mask = torch.rand(1, 1, 32, 48, dtype=torch.float64)
    weights = layer_weights(mask, ["relu1_1", "relu3_1"], "area")
    assert torch.equal(weights["relu1_1"], mask)
    expected = mask.reshape(1, 1, 8, 4, 12, 4).mean(dim=(3, 5))  # two 2×2 poolings = one 4×4 mean
    torch.testing.assert_close(weights["relu3_1"], expected, rtol=1e-12, atol=1e-15)


def test_all_dilates_and_inside_erodes_by_the_receptive_field():
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    dilated = layer_weights(mask, ["relu1_1", "relu1_2"], "all")
    eroded = layer_weights(mask, ["relu1_1", "relu1_2"], "inside")
    for layer, grow in (("relu1_1", 1), ("relu1_2", 2)):  # one more position per 3×3 convolution
        expected_all = torch.zeros_like(mask)
        expected_all[..., 4 - grow: 12 + grow, 4 - grow: 12 + grow] = 1
        expected_inside = torch.zeros_like(mask)
        expected_inside[..., 4 + grow: 12 - grow, 4 + grow: 12 - grow] = 1
        assert torch.equal(dilated[layer], expected_all)
        assert torch.equal(eroded[layer], expected_inside)


def test_the_image_border_does_not_erode_inside():
    weights = layer_weights(torch.ones(1, 1, 16, 16), STYLE_LAYERS, "inside")
    assert all(bool((w == 1).all()) for w in weights.values())


def test_a_narrow_region_vanishes_inside_deep_layers_but_not_with_area():
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :, 20:28] = 1  # 8 px wide: less than relu3_1's receptive field
    inside = layer_weights(mask, STYLE_LAYERS, "inside")
    area = layer_weights(mask, STYLE_LAYERS, "area")
    assert inside["relu1_1"].sum() > 0 and inside["relu3_1"].sum() == 0
    assert all(w.sum() > 0 for w in area.values())


# -- reading -------------------------------------------------------------------------------


def test_a_mask_is_read_as_luminance_times_alpha(tmp_path):
    rgba = np.zeros((18, 24, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[:, :12, 3] = 255  # opaque white on the left, transparent on the right
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    mask = load_mask(tmp_path / "alpha.png", (36, 48), "mask")
    assert mask.shape == (1, 1, 18, 24)
    assert bool((mask[..., :, :12] == 1).all()) and bool((mask[..., :, 12:] == 0).all())


def test_a_16_bit_mask_keeps_its_levels(tmp_path):
    levels = np.full((10, 10), 32768, dtype=np.uint16)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    mask = load_mask(tmp_path / "deep.png", (10, 10), "mask")
    torch.testing.assert_close(mask, torch.full((1, 1, 10, 10), 32768 / 65535))


@pytest.mark.parametrize("shape, words", [((10, 30), "aspect ratio"), ((36, 48), "empty")])
def test_bad_masks_are_refused_with_one_line(tmp_path, shape, words):
    values = np.ones(shape) if words == "aspect ratio" else np.zeros(shape)
    path = save_mask(tmp_path / "bad.png", values)
    with pytest.raises(GatysError, match=words):
        load_mask(path, (36, 48), "mask")


def test_an_unreadable_mask_is_refused(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(GatysError, match="cannot read mask"):
        load_mask(tmp_path / "text.png", (36, 48), "mask")


# -- settings and ids ----------------------------------------------------------------------


def test_style_masks_need_masks_and_mask_files_must_exist(tmp_path):
    left, _ = halves(tmp_path)
    with pytest.raises(GatysError, match="style-masks needs masks"):
        TransferConfig(style_masks=(str(left),))
    with pytest.raises(GatysError, match="is not a file"):
        TransferConfig(masks=(str(tmp_path / "missing.png"),))
    assert TransferConfig(masks=f"{left},{left}").masks == (str(left), str(left))


def test_one_mask_per_style(content_path, style_path, tmp_path):
    left, right = halves(tmp_path)
    with pytest.raises(GatysError, match="1 mask for 2 style images"):
        Job(content_path, (style_path, style_path), TransferConfig(masks=(str(left),)))


def test_the_id_holds_the_masks_bytes_and_unmasked_ids_do_not_change(content_path, style_path, tmp_path):
    left, right = halves(tmp_path)
    plain = Job(content_path, style_path, TransferConfig(**FAST))
    assert "masks" not in plain.identity["settings"] and "mask_propagation" not in plain.identity["settings"]
    masked = Job(content_path, style_path, TransferConfig(**FAST, masks=(str(left),)))
    moved = tmp_path / "elsewhere.png"
    moved.write_bytes(left.read_bytes())
    same_bytes = Job(content_path, style_path, TransferConfig(**FAST, masks=(str(moved),)))
    other = Job(content_path, style_path, TransferConfig(**FAST, masks=(str(right),)))
    assert masked.id == same_bytes.id != other.id != plain.id
    assert left in masked.inputs


# -- the engine ----------------------------------------------------------------------------


def test_a_white_mask_gives_the_unmasked_picture(transfer, content_path, style_path, tmp_path):
    white = save_mask(tmp_path / "white.png", np.ones((36, 48)))
    plain = transfer.run(content_path, style_path, config=TransferConfig(**FAST))
    masked = transfer.run(content_path, style_path, config=TransferConfig(**FAST, masks=(str(white),)))
    torch.testing.assert_close(masked.image, plain.image, rtol=0, atol=1e-5)


def test_each_style_is_compared_over_its_own_region(transfer, content_path, style_path, image_dir, tmp_path):
    """The masked objective's style term = Σ_k share_k · L(x over region k, style k), by layer."""
    left, right = halves(tmp_path, 24, 32)  # the content's size at 32 px: binary at the layer's grid
    styles = [style_path, image_dir / "style2.jpg"]
    config = TransferConfig(**FAST, masks=(str(left), str(right)), style_losses=("moments",), style_layers=("relu1_1",),
                            normalize_layers=False)
    objective = transfer.objective(content_path, styles, config=config)
    x = torch.rand(1, 3, *objective.image_shape)
    feats = objective.features(x, ["relu1_1"])["relu1_1"]
    loss = losses.create("moments")
    style_feats = [transfer.objective(content_path, s, config=TransferConfig(**FAST, style_losses=("moments",),
                                                                              style_layers=("relu1_1",),
                                                                              normalize_layers=False))
                   for s in styles]
    expected = 0.0
    half = feats.shape[-1] // 2
    for region, single in zip((slice(None, half), slice(half, None)), style_feats):
        (_, target, _), = single.style_terms[0].targets["relu1_1"]
        expected += 0.5 * loss(feats[..., region], target)
    _, parts = objective(x)
    torch.testing.assert_close(parts["style"], loss.weight * expected * config.style_weight, rtol=1e-5, atol=0)


def test_masks_work_with_scales_and_colour_preservation(transfer, content_path, style_path, image_dir, tmp_path):
    left, right = halves(tmp_path)
    for colours in ("luminance", "histogram"):
        result = transfer.run(content_path, [style_path, image_dir / "style2.jpg"],
                              config=TransferConfig(**{**FAST, "size": 48, "iterations": 3}, scales=(32, 48),
                                                    preserve_colors=colours, masks=(str(left), str(right))))
        assert result.image.shape == (1, 3, 36, 48) and torch.isfinite(result.image).all()


def test_a_loss_without_position_weights_is_refused(transfer, content_path, style_path, tmp_path):
    @losses.register("test-unweighted-loss")
    class Unweighted(losses.StyleLoss):
        def target(self, feats):
            return feats.mean()

        def forward(self, feats, target):
            return (feats.mean() - target).square()

    white = save_mask(tmp_path / "white.png", np.ones((36, 48)))
    plain = transfer.run(content_path, style_path, config=TransferConfig(**FAST, style_losses=("test-unweighted-loss",)))
    assert torch.isfinite(plain.image).all()  # without masks it still runs
    with pytest.raises(GatysError, match="test-unweighted-loss.*position weights"):
        transfer.run(content_path, style_path, config=TransferConfig(**FAST, style_losses=("test-unweighted-loss",),
                                                                     masks=(str(white),)))


# -- the command line ----------------------------------------------------------------------


def cli(capsys, *args):
    """main() as the console script runs it: (exit status, stderr lines)."""
    try:
        main(["transfer", *map(str, args), "--size", "32", "--iterations", "3", "--precision", "fp32",
              "--device", "cpu", "-q"])
        status = 0
    except SystemExit as exit_info:
        status = exit_info.code
    return status, capsys.readouterr().err.strip().splitlines()


def test_two_styles_in_two_regions_from_the_command_line(capsys, content_path, style_path, image_dir, tmp_path):
    left, right = halves(tmp_path)
    out = tmp_path / "out.png"
    status, _ = cli(capsys, content_path, style_path, image_dir / "style2.jpg", "--masks", f"{left},{right}",
                    "-o", out)
    assert status == 0 and Image.open(out).size == (32, 24)


@pytest.mark.parametrize("problem", ["count", "aspect", "empty", "missing", "style-masks alone"])
def test_bad_masks_exit_2_with_one_line_and_write_nothing(capsys, content_path, style_path, image_dir, tmp_path,
                                                          problem):
    left, right = halves(tmp_path)
    options = {
        "count": ["--masks", str(left)],
        "aspect": ["--masks", f"{left},{save_mask(tmp_path / 'wide.png', np.ones((10, 40)))}"],
        "empty": ["--masks", f"{left},{save_mask(tmp_path / 'black.png', np.zeros((36, 48)))}"],
        "missing": ["--masks", f"{left},{tmp_path / 'nowhere.png'}"],
        "style-masks alone": ["--style-masks", f"{left},{right}"],
    }[problem]
    out = tmp_path / "out.png"
    out.write_bytes(b"finished work")
    status, lines = cli(capsys, content_path, style_path, image_dir / "style2.jpg", *options, "-o", out)
    assert status == 2 and len(lines) == 1 and "Traceback" not in lines[0], lines
    assert out.read_bytes() == b"finished work"
    assert sorted(path.name for path in tmp_path.iterdir() if path.suffix == ".png" and "out" in path.name) == \
        ["out.png"]


def test_uncovered_and_overlapping_masks_run(capsys, content_path, style_path, image_dir, tmp_path):
    corner = np.zeros((36, 48))
    corner[:12, :12] = 1
    corner_path = save_mask(tmp_path / "corner.png", corner)
    everything = save_mask(tmp_path / "all.png", np.ones((36, 48)))
    out = tmp_path / "out.png"
    status, _ = cli(capsys, content_path, style_path, image_dir / "style2.jpg", "--masks",
                    f"{corner_path},{everything}", "-o", out)  # overlapping: the corner takes both styles
    assert status == 0 and out.exists()
    status, _ = cli(capsys, content_path, style_path, "--masks", str(corner_path), "-o", tmp_path / "corner-only.png")
    assert status == 0  # the rest of the picture keeps only the content term


# -- galleries -----------------------------------------------------------------------------


def test_a_gallery_job_takes_masks_relative_to_its_spec(image_dir, tmp_path):
    from gatys.gallery import Gallery

    for name in ("content.png", "style.png", "style2.jpg"):
        (tmp_path / name).write_bytes((image_dir / name).read_bytes())
    halves(tmp_path)
    spec = tmp_path / "gallery.toml"
    spec.write_text('[[jobs]]\ncontent = "content.png"\nstyle = ["style.png", "style2.jpg"]\n'
                    'masks = ["left.png", "right.png"]\n')
    (job,) = Gallery.from_toml(spec).jobs
    assert job.job.config.masks == (str((tmp_path / "left.png").resolve()), str((tmp_path / "right.png").resolve()))
    spec.write_text('contents = ["content.png"]\nstyles = ["style.png"]\n[defaults]\nmasks = ["left.png"]\n')
    with pytest.raises(GatysError, match=r"\[defaults\]: masks belong to one content"):
        Gallery.from_toml(spec)
