"""What the engine puts between the losses and the optimizer: each factor of the formula in docs/losses.md, measured.

    total = content_weight · MSE(F_c(x)/s_c, P/s_c)
          + style_weight · Σ_losses loss.weight/|layers| · Σ_layers D_l + tv_weight · TV(x)

Each test changes one thing and checks that the engine's own objective (Transfer.objective)
changes by exactly the factor the formula says.
"""
from __future__ import annotations

import pytest
import torch
from PIL import Image

import losses
from conftest import _pattern, requires_cpu_bf16
from gatys.images import as_image, resize

LAYER = "relu2_1"


@pytest.fixture(scope="module")
def same_shape_style(tmp_path_factory):
    """A style image with the content's shape (48×36), so that x can be exactly the style."""
    path = tmp_path_factory.mktemp("style") / "style_48x36.png"
    Image.fromarray(_pattern(36, 48, 7)).save(path)
    return path


def _parts(transfer, content, style, x, **settings):
    objective = transfer.objective(content, style, **settings)
    with torch.no_grad():
        _, parts = objective(resize(x, shape=objective.image_shape))
    return {name: value.item() for name, value in parts.items()}


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=requires_cpu_bf16)])
@pytest.mark.parametrize("loss", ["gram", "moments", "mmd-linear", "w2"])
def test_the_style_term_vanishes_at_the_style_and_the_content_term_at_the_content(
        transfer, content_path, same_shape_style, precision, loss):
    content, style = as_image(content_path), as_image(same_shape_style)
    settings = dict(style_losses=(loss,), precision=precision)
    at_content = _parts(transfer, content_path, same_shape_style, content, **settings)
    at_style = _parts(transfer, content_path, same_shape_style, style, **settings)
    tolerance = 1e-6 if precision == "fp32" else 1e-3  # bf16: targets and x take different kernels, each rounded
    assert at_style["content"] > 0 and at_content["style"] > 0
    assert at_content["content"] <= tolerance * at_style["content"]
    assert at_style["style"] <= tolerance * at_content["style"]


def test_a_loss_s_weight_and_the_style_weight_multiply_the_style_term(transfer, content_path, style_path):
    x = as_image(content_path).flip(-1)
    one = _parts(transfer, content_path, style_path, x, style_losses=("gram:weight=1",))["style"]
    assert _parts(transfer, content_path, style_path, x, style_losses=("gram:weight=3",))["style"] == \
        pytest.approx(3 * one, rel=1e-6)
    assert _parts(transfer, content_path, style_path, x, style_losses=("gram:weight=1",), style_weight=0.5)[
        "style"] == pytest.approx(0.5 * one, rel=1e-6)


def test_the_style_term_is_the_mean_over_layers(transfer, content_path, style_path):
    x = as_image(content_path).flip(-1)
    per_layer = [_parts(transfer, content_path, style_path, x, style_layers=(layer,))["style"]
                 for layer in ("relu1_1", "relu3_1")]
    both = _parts(transfer, content_path, style_path, x, style_layers=("relu1_1", "relu3_1"))["style"]
    assert both == pytest.approx(sum(per_layer) / 2, rel=1e-5)


def _rms(transfer, image_path, layer, precision="fp32"):
    network = transfer.network(transfer.config, torch.device("cpu"), precision)
    image = resize(as_image(image_path), 32)
    return transfer.cache.features(network, image, [layer], precision)[layer].double().square().mean().sqrt().item()


def test_layer_normalisation_divides_each_layer_by_the_style_s_rms(transfer, content_path, style_path):
    """Gram is of degree 4 in the features: dividing them by s divides the loss by s⁴; the content MSE by s_c²."""
    x = as_image(content_path).flip(-1)
    settings = dict(style_layers=(LAYER,), content_layer="relu3_1")
    normalised = _parts(transfer, content_path, style_path, x, **settings)
    raw = _parts(transfer, content_path, style_path, x, normalize_layers=False, **settings)
    assert raw["style"] / normalised["style"] == pytest.approx(_rms(transfer, style_path, LAYER) ** 4, rel=1e-4)
    assert raw["content"] / normalised["content"] == pytest.approx(_rms(transfer, content_path, "relu3_1") ** 2,
                                                                   rel=1e-4)


def test_blend_weights_sum_the_losses_and_set_the_scale(transfer, content_path, style_path, image_dir):
    """Σ_k w_k L(F, S_k) without normalisation; with it, s_l² = Σ_k w_k mean(S_l,k²)."""
    second = image_dir / "style2.jpg"
    x = as_image(content_path).flip(-1)
    settings = dict(style_layers=(LAYER,), normalize_layers=False)
    each = [_parts(transfer, content_path, style, x, **settings)["style"] for style in (style_path, second)]
    blended = _parts(transfer, content_path, [style_path, second], x, style_blend_weights=(7, 3), **settings)
    assert blended["style"] == pytest.approx(0.7 * each[0] + 0.3 * each[1], rel=1e-5)
    normalised = _parts(transfer, content_path, [style_path, second], x, style_layers=(LAYER,),
                        style_blend_weights=(7, 3))
    scale_squared = 0.7 * _rms(transfer, style_path, LAYER) ** 2 + 0.3 * _rms(transfer, second, LAYER) ** 2
    assert blended["style"] / normalised["style"] == pytest.approx(scale_squared ** 2, rel=1e-4)


def test_moments_blends_styles_as_one_mixture(transfer, content_path, style_path, tmp_path):
    """Equal weights over equal-sized styles: the mixture is the styles' positions pooled together."""
    second = tmp_path / "second.png"
    Image.fromarray(_pattern(40, 40, 9)).save(second)  # the same size as style.png
    x = as_image(content_path).flip(-1)
    settings = dict(style_losses=("moments",), style_layers=(LAYER,), normalize_layers=False)
    blended = _parts(transfer, content_path, [style_path, second], x, **settings)["style"]
    network = transfer.network(transfer.config, torch.device("cpu"), "fp32")
    feats = [transfer.cache.features(network, resize(as_image(path), 32), [LAYER], "fp32")[LAYER]
             for path in (style_path, second)]
    pooled = torch.cat([f.flatten(2) for f in feats], dim=2).unsqueeze(-1)
    moments = losses.create("moments")
    objective = transfer.objective(content_path, [style_path, second], **settings)
    output = objective.features(resize(x, shape=objective.image_shape), [LAYER])[LAYER].float()
    expected = moments.weight * moments(output, moments.target(pooled)).item()
    assert blended == pytest.approx(expected, rel=1e-4)
