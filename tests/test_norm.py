"""Instance norm, AdaIN and CIN against their article equations, in float64."""
import pytest
import torch

from gatys.norm import ConditionalInstanceNorm, adain, instance_norm


def features(seed, batch=2, channels=3, height=5, width=4):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, height, width, generator=generator, dtype=torch.float64) * 3 + 1


def stats(x):
    """μ and biased σ per image and channel, by hand."""
    flat = x.flatten(2)
    mean = flat.sum(2) / flat.shape[2]
    return mean, torch.sqrt(((flat - mean[..., None]) ** 2).sum(2) / flat.shape[2])


def test_instance_norm_equation():
    x = features(0)
    eps = 1e-3
    mean, std = stats(x)
    expected = (x - mean[..., None, None]) / torch.sqrt(std[..., None, None] ** 2 + eps)
    torch.testing.assert_close(instance_norm(x, eps), expected, rtol=1e-12, atol=1e-12)
    mean, std = stats(instance_norm(x, 0))
    torch.testing.assert_close(mean, torch.zeros_like(mean), rtol=0, atol=1e-12)
    torch.testing.assert_close(std, torch.ones_like(std), rtol=1e-12, atol=0)


def test_adain_equation_and_statistics():
    x, y = features(1), features(2, batch=1, height=7, width=6)
    eps = 1e-5
    x_mean, x_std = stats(x)
    y_mean, y_std = stats(y)
    expected = (y_std[..., None, None] * (x - x_mean[..., None, None]) / torch.sqrt(x_std[..., None, None] ** 2 + eps)
                + y_mean[..., None, None])
    torch.testing.assert_close(adain(x, y, eps), expected, rtol=1e-12, atol=1e-12)
    out_mean, out_std = stats(adain(x, y, 0))
    torch.testing.assert_close(out_mean, y_mean.expand_as(out_mean), rtol=0, atol=1e-12)
    torch.testing.assert_close(out_std, y_std.expand_as(out_std), rtol=1e-12, atol=0)


def test_adain_checks_shapes():
    with pytest.raises(ValueError, match="channels"):
        adain(features(0), features(1, channels=4))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        adain(features(0)[0], features(1))


def test_conditional_instance_norm():
    layer = ConditionalInstanceNorm(num_styles=3, channels=3).double()
    x = features(3)
    torch.testing.assert_close(layer(x, 1), instance_norm(x, layer.eps))  # γ = 1, β = 0 at the start
    with torch.no_grad():
        layer.scale.copy_(torch.arange(9, dtype=torch.float64).reshape(3, 3))
        layer.shift.copy_(-torch.arange(9, dtype=torch.float64).reshape(3, 3))
    normalised = instance_norm(x, layer.eps)
    by_index = layer(x, torch.tensor([2, 0]))
    for item, style in enumerate([2, 0]):
        expected = layer.scale[style, :, None, None] * normalised[item] + layer.shift[style, :, None, None]
        torch.testing.assert_close(by_index[item], expected)
    mix = torch.tensor([0.25, 0.0, 0.75], dtype=torch.float64)
    expected = (0.25 * layer(x, 0) + 0.75 * layer(x, 2))  # (γ, β) blend linearly, so outputs do too
    torch.testing.assert_close(layer(x, mix), expected)
    with pytest.raises(ValueError, match="in \\[0, 3\\)"):
        layer(x, 3)
    with pytest.raises(ValueError, match="channels"):
        layer(features(0, channels=4), 0)


def test_conditional_instance_norm_learns():
    layer = ConditionalInstanceNorm(2, 3)
    layer(features(4).float(), torch.tensor([0, 1])).square().sum().backward()
    assert layer.scale.grad is not None and layer.scale.grad.abs().sum() > 0
